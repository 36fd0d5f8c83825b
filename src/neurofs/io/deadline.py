"""The deadline of one try of an HTTP request.

httpx's read timeout is per socket read: a server that accepts and never answers, or trickles
a byte every few seconds, would otherwise hold a reader forever. So an answer must start by a
deadline set by the retry budget, and its body must then keep coming (``Timeouts``). The retry
loop makes one ``TryClock`` per try and hands it to the exchange, which moves it as the answer
arrives; a try whose clock runs out is cancelled by its scope.
"""

from __future__ import annotations

from dataclasses import dataclass

import trio


@dataclass(frozen=True)
class Timeouts:
    connect: float = 10.0
    read: float = 20.0
    # Once its headers are in, a body must bring stall_bytes within every stall_seconds, or the
    # try is abandoned as stalled (a minimum rate of 6.4 KB/s with the defaults).
    stall_seconds: float = 10.0
    stall_bytes: int = 64 * 1024


class TryClock:
    """The deadline of one try, moved as its answer arrives: the retry deadline until the
    headers are in, then at most ``stall_seconds`` ahead, pushed on by each ``stall_bytes``."""

    def __init__(self, scope: trio.CancelScope, answer_by: float, timeouts: Timeouts) -> None:
        self.scope = scope
        self._answer_by = answer_by
        self._timeouts = timeouts
        self._since_mark = 0
        # Headers arrived: the server is up, whatever it said.
        self.answered = False

    def request_out(self) -> None:
        """A request (the first, or one following a redirect) waits for its answer."""
        self.answered = False
        self._since_mark = 0
        self.scope.deadline = self._answer_by

    def headers_in(self) -> None:
        self.answered = True
        self.scope.deadline = min(
            self.scope.deadline, trio.current_time() + self._timeouts.stall_seconds
        )

    def body_in(self, nbytes: int) -> None:
        self._since_mark += nbytes
        if self._since_mark >= self._timeouts.stall_bytes:
            self._since_mark = 0
            self.scope.deadline = trio.current_time() + self._timeouts.stall_seconds
