"""``python -m neurofs_emulators.dandi``: run the DANDI emulator (see :func:`run`)."""

from __future__ import annotations

from neurofs_emulators import command
from neurofs_emulators.dandi import run


def main(argv: list[str] | None = None) -> None:
    parser = command.parser("dandi", "Offline DANDI Archive emulator with deterministic data.")
    parser.add_argument(
        "--validation-delay",
        type=float,
        default=None,
        help="seconds a written draft or asset stays Pending (default 1)",
    )
    parser.add_argument(
        "--blob-port",
        type=int,
        default=0,
        help="the object store's port (0: a free one); fixed, it survives a restart",
    )
    args = parser.parse_args(argv)
    run(
        host=args.host,
        port=args.port,
        blob_port=args.blob_port,
        knobs=command.knobs(args),
        data_dir=args.data_dir,
        validation_delay=args.validation_delay,
    )


if __name__ == "__main__":
    main()
