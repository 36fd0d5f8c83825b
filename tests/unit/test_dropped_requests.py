"""The daemon's filter of pyfuse3's log: an answer to a request the kernel dropped (a killed
reader, an unmount with reads in flight) is no error; every other pyfuse3 error stays one."""

from __future__ import annotations

import errno
import logging
import os

from neurofs.fs.daemon import DroppedRequests


def _record(message: str, *args: object) -> logging.LogRecord:
    return logging.LogRecord("pyfuse3", logging.ERROR, "handlers.pxi", 422, message, args, None)


def test_an_answer_to_a_dropped_request_is_not_an_error() -> None:
    record = _record("fuse_read(): fuse_reply_* failed with %s", os.strerror(errno.ENOENT))
    assert DroppedRequests().filter(record) is False


def test_other_pyfuse3_errors_stay() -> None:
    kept = [
        _record("fuse_read(): fuse_reply_* failed with %s", os.strerror(errno.EIO)),
        _record("fuse_lookup(): fuse_reply_* failed with %s", os.strerror(errno.EINVAL)),
        _record("Uncaught top-level exception: %s", "boom"),
    ]
    assert all(DroppedRequests().filter(record) for record in kept)
