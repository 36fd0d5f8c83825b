"""``python -m neurofs_emulators.dandi``: run the DANDI emulator (see :data:`EMULATOR`)."""

from __future__ import annotations

from neurofs_emulators.dandi import EMULATOR

# ``neurofs emulate dandi ARGS`` calls this with ARGS.
main = EMULATOR.main

if __name__ == "__main__":
    main()
