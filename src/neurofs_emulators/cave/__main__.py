"""``python -m neurofs_emulators.cave``: run the CAVE emulator (see :func:`run`)."""

from __future__ import annotations

from neurofs_emulators import command
from neurofs_emulators.cave import run


def main(argv: list[str] | None = None) -> None:
    args = command.parser(
        "cave", "Offline CAVE emulator (global server + local server) with sample data."
    ).parse_args(argv)
    run(host=args.host, port=args.port, knobs=command.knobs(args), data_dir=args.data_dir)


if __name__ == "__main__":
    main()
