"""``python -m neurofs_emulators.webknossos``: run the WEBKNOSSOS emulator (:data:`EMULATOR`)."""

from __future__ import annotations

from neurofs_emulators.webknossos import EMULATOR

# ``neurofs emulate webknossos ARGS`` calls this with ARGS.
main = EMULATOR.main

if __name__ == "__main__":
    main()
