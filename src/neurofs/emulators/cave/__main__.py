"""``python -m neurofs.emulators.cave``: run the CAVE emulator (see :func:`run`)."""

from __future__ import annotations

import argparse
from pathlib import Path

from neurofs.emulators.cave import run
from neurofs.emulators.network import NetworkKnobs


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(
        prog="python -m neurofs.emulators.cave",
        description="Offline CAVE emulator (global server + local server) with sample data.",
    )
    parser.add_argument("--host", default="127.0.0.1")
    parser.add_argument("--port", type=int, default=0, help="global server port (0: free one)")
    parser.add_argument("--latency-ms", type=float, default=0.0)
    parser.add_argument("--bandwidth-mbps", type=float, default=None)
    parser.add_argument("--fault-rate", type=float, default=0.0)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--data-dir", type=Path, default=None, help="unused (data is generated)")
    args = parser.parse_args(argv)
    knobs = NetworkKnobs(
        latency_ms=args.latency_ms,
        bandwidth_mbps=args.bandwidth_mbps,
        fault_rate=args.fault_rate,
        seed=args.seed,
    )
    run(host=args.host, port=args.port, knobs=knobs, data_dir=args.data_dir)


if __name__ == "__main__":
    main()
