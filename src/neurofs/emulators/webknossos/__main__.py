"""``python -m neurofs.emulators.webknossos``: run the WEBKNOSSOS emulator (see :func:`run`)."""

from __future__ import annotations

from neurofs.emulators import command
from neurofs.emulators.webknossos import run


def main(argv: list[str] | None = None) -> None:
    args = command.parser(
        "webknossos", "Offline WEBKNOSSOS emulator (main server + datastore), synthetic data."
    ).parse_args(argv)
    run(host=args.host, port=args.port, knobs=command.knobs(args), data_dir=args.data_dir)


if __name__ == "__main__":
    main()
