"""What every scenario gets: the run's settings and the running emulators."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from bench.harness import Bench, Emu, Mount
from neurofs_emulators.webknossos.sample import OWNER_TOKEN as WK_OWNER_TOKEN


@dataclass
class Ctx:
    bench: Bench
    reps: int
    quick: bool
    latency_ms: float
    bandwidth_mbps: float | None
    read_bytes: int  # how much of the 1 GiB blob scenarios 1-3 read

    # ------------------------------------------------------------ emulators

    def dandi(self, throttled: bool = True) -> Emu:
        return self._emu("dandi", throttled)

    def webknossos(self, throttled: bool = True) -> Emu:
        return self._emu("webknossos", throttled)

    def _emu(self, service: str, throttled: bool) -> Emu:
        if throttled:
            return self.bench.emulator(service, self.latency_ms, self.bandwidth_mbps)
        return self.bench.emulator(service, 0, None)

    @property
    def network(self) -> str:
        if not self.latency_ms and not self.bandwidth_mbps:
            return "no throttling"
        bw = (
            f"{self.bandwidth_mbps:g} Mbit/s ({self.bandwidth_mbps / 8:g} MB/s) per connection"
            if self.bandwidth_mbps
            else "unlimited bandwidth"
        )
        return f"{self.latency_ms:g} ms latency per request, {bw}"

    # ------------------------------------------------------------ mounts

    def dandi_mount(self, emu: Emu, name: str, **kw: Any) -> Mount:
        source = {"kind": "dandi", "name": "dandi", "url": emu.api_url}
        return self.bench.mount([source], name=name, **kw)

    def wk_mount(self, emu: Emu, name: str, **kw: Any) -> Mount:
        source = {
            "kind": "webknossos",
            "name": "webknossos",
            "url": emu.running.urls[0].rstrip("/"),
            "token": WK_OWNER_TOKEN,
        }
        return self.bench.mount([source], name=name, **kw)
