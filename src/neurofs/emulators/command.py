"""The command line every emulator shares (``python -m neurofs.emulators.<service>``)."""

from __future__ import annotations

import argparse
from pathlib import Path

from neurofs.emulators.network import NetworkKnobs


def parser(service: str, description: str) -> argparse.ArgumentParser:
    """The flags of every emulator; a service adds its own before parsing."""
    p = argparse.ArgumentParser(
        prog=f"python -m neurofs.emulators.{service}", description=description
    )
    p.add_argument("--host", default="127.0.0.1")
    p.add_argument("--port", type=int, default=0, help="first server's port (0: a free one)")
    p.add_argument("--latency-ms", type=float, default=0.0)
    p.add_argument("--bandwidth-mbps", type=float, default=None)
    p.add_argument("--fault-rate", type=float, default=0.0)
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--data-dir", type=Path, default=None)
    return p


def knobs(args: argparse.Namespace) -> NetworkKnobs:
    return NetworkKnobs(
        latency_ms=args.latency_ms,
        bandwidth_mbps=args.bandwidth_mbps,
        fault_rate=args.fault_rate,
        seed=args.seed,
    )
