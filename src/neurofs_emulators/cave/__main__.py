"""``python -m neurofs_emulators.cave``: run the CAVE emulator (see :data:`EMULATOR`)."""

from __future__ import annotations

from neurofs_emulators.cave import EMULATOR

# ``neurofs emulate cave ARGS`` calls this with ARGS.
main = EMULATOR.main

if __name__ == "__main__":
    main()
