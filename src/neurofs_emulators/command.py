"""The command line every emulator shares (``python -m neurofs_emulators.<service>``)."""

from __future__ import annotations

import argparse
from pathlib import Path

from neurofs_emulators.network import NetworkKnobs


def parser(service: str, description: str) -> argparse.ArgumentParser:
    """The flags of every emulator; a service adds its own before parsing."""
    p = argparse.ArgumentParser(
        prog=f"python -m neurofs_emulators.{service}", description=description
    )
    p.add_argument("--host", default="127.0.0.1")
    p.add_argument("--port", type=int, default=0, help="first server's port (0: a free one)")
    p.add_argument("--latency-ms", type=float, default=0.0)
    p.add_argument("--bandwidth-mbps", type=float, default=None)
    p.add_argument(
        "--fault-rate", type=float, default=0.0, help="share of requests given a random fault"
    )
    p.add_argument("--error-rate", type=float, default=0.0, help="share answered 500/502/503")
    p.add_argument("--cut-rate", type=float, default=0.0, help="share cut mid-body")
    p.add_argument("--throttle-rate", type=float, default=0.0, help="share answered 429")
    p.add_argument("--retry-after", type=int, default=1, help="Retry-After of a 429, seconds")
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--data-dir", type=Path, default=None)
    return p


def knobs(args: argparse.Namespace) -> NetworkKnobs:
    return NetworkKnobs(
        latency_ms=args.latency_ms,
        bandwidth_mbps=args.bandwidth_mbps,
        fault_rate=args.fault_rate,
        error_rate=args.error_rate,
        cut_rate=args.cut_rate,
        throttle_rate=args.throttle_rate,
        retry_after=args.retry_after,
        seed=args.seed,
    )
