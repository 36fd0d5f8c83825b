"""``python -m neurofs_emulators.webknossos``: run the WEBKNOSSOS emulator (see :func:`run`)."""

from __future__ import annotations

from neurofs_emulators import command
from neurofs_emulators.webknossos import run
from neurofs_emulators.webknossos.sample import API_VERSIONS, CURRENT_API_VERSION


def main(argv: list[str] | None = None) -> None:
    parser = command.parser(
        "webknossos", "Offline WEBKNOSSOS emulator (main server + datastore), synthetic data."
    )
    parser.add_argument(
        "--api-version",
        type=int,
        choices=API_VERSIONS,
        default=CURRENT_API_VERSION,
        help="the current HTTP API version announced and served (default: %(default)s)",
    )
    args = parser.parse_args(argv)
    run(
        host=args.host,
        port=args.port,
        knobs=command.knobs(args),
        data_dir=args.data_dir,
        api_version=args.api_version,
    )


if __name__ == "__main__":
    main()
