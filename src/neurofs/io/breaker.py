"""The down-window after an outage: a circuit breaker for one server.

When a request used up its whole retry budget without reaching the server, the breaker trips
(opens): for a while requests fail at once, so that an outage costs one wait rather than one
per file (a hung server would make every try wait for its deadline). Once the window has
passed it is half-open: one request at a time may try (the trial). Any answer from the server
resets (closes) it; a trial that cannot reach the server trips it again.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from typing import Literal

State = Literal["closed", "open", "half-open"]


class BreakerOpen(Exception):
    """Not admitted: the server is down. ``wait``: seconds until the next trial may start
    (0 when another trial is running)."""

    def __init__(self, wait: float) -> None:
        super().__init__(f"the server is down (next try in {wait:.0f} s)")
        self.wait = wait


class Breaker:
    def __init__(self, now: Callable[[], float] = time.monotonic) -> None:
        self._now = now
        self._down = False
        self._next_trial = 0.0
        self._trial_running = False

    @property
    def down(self) -> bool:
        """Tripped and not reset since: open or half-open."""
        return self._down

    @property
    def state(self) -> State:
        if not self._down:
            return "closed"
        return "open" if self._now() < self._next_trial else "half-open"

    def trip(self, seconds: float) -> None:
        """The server could not be reached: refuse requests for ``seconds``. (The window is
        an argument because the client's retry policy may be replaced after it is built.)"""
        self._down = True
        self._next_trial = self._now() + seconds

    def reset(self) -> None:
        """The server answered (anything, even an error): it is up."""
        self._down = False

    @contextmanager
    def trial(self) -> Iterator[None]:
        """While down: run the body as the one trial, or raise BreakerOpen at once."""
        wait = self._next_trial - self._now()
        if self._trial_running or wait > 0:
            raise BreakerOpen(max(wait, 0.0))
        self._trial_running = True
        try:
            yield
        finally:
            self._trial_running = False
