"""Keeping tokens out of every log line, message and file neurofs writes.

Every token is registered here when the configuration is loaded. A logging filter installed
on the root logger replaces registered tokens (and signed-URL query values) with ``***`` in
every record, whatever code formatted it; ``redact`` does the same for text that goes into
files the user can read (errors.log, config.json, exception messages).
"""

from __future__ import annotations

import functools
import logging
import re
import sys
import threading
import traceback
from types import TracebackType
from urllib.parse import parse_qsl, quote, quote_plus, urlencode, urlsplit, urlunsplit

_lock = threading.Lock()
_secrets: set[str] = set()

# Query parameters that carry credentials in presigned or token URLs.
_SENSITIVE_QUERY = re.compile(r"(?i)(signature|credential|token|security-token|key|sig|auth)")
_SIGNED_QUERY_VALUE = re.compile(
    r"(?i)((?:x-amz-)?(?:signature|credential|security-token)|token|sig)=([^&\s\"']+)"
)

MASK = "***"


def register(secret: str | None) -> None:
    """Remember a secret so that it is masked everywhere from now on, also in the forms it
    takes inside URLs (percent-encoded, or with ``+`` for spaces)."""
    if secret and len(secret) >= 4:
        with _lock:
            _secrets.update({secret, quote(secret, safe=""), quote_plus(secret), quote(secret)})


def redact(text: str) -> str:
    """Mask every registered secret and every signed-URL credential in ``text``."""
    with _lock:
        secrets = sorted(_secrets, key=len, reverse=True)
    for s in secrets:
        if s in text:
            text = text.replace(s, MASK)
    return _SIGNED_QUERY_VALUE.sub(lambda m: f"{m.group(1)}={MASK}", text)


@functools.lru_cache(maxsize=1024)
def redact_url(url: str) -> str:
    """A URL fit for logs: credential-like query values and a password in it masked.
    Remembered: each range request of an object names its (long, presigned) URL, and
    parsing it again costs 60 µs a request."""
    parts = urlsplit(url)
    if parts.password:
        netloc = parts.netloc.rsplit("@", 1)[1]
        parts = parts._replace(netloc=f"{parts.username}:{MASK}@{netloc}")
        url = urlunsplit(parts)
    if not parts.query:
        return redact(url)
    query = [
        (k, MASK if _SENSITIVE_QUERY.search(k) else v)
        for k, v in parse_qsl(parts.query, keep_blank_values=True)
    ]
    return redact(urlunsplit(parts._replace(query=urlencode(query, safe="*"))))


class RedactingFilter(logging.Filter):
    """Rewrites each record's message with secrets masked (args are folded in first)."""

    def filter(self, record: logging.LogRecord) -> bool:
        message = record.getMessage()
        cleaned = redact(message)
        if record.exc_info and record.exc_info[1] is not None:
            # The traceback text is formatted later by the handler; fold it in now so it is
            # redacted too.
            formatter = logging.Formatter()
            cleaned = cleaned + "\n" + redact(formatter.formatException(record.exc_info))
            record.exc_info = None
            record.exc_text = None
        record.msg = cleaned
        record.args = None
        return True


def install_log_filter() -> None:
    """Attach the redacting filter to every handler of the root logger, and send what would
    bypass logging (warnings, tracebacks of uncaught exceptions) through it too."""
    root = logging.getLogger()
    for handler in root.handlers:
        if not any(isinstance(f, RedactingFilter) for f in handler.filters):
            handler.addFilter(RedactingFilter())
    logging.captureWarnings(True)
    sys.excepthook = _redacted_excepthook
    threading.excepthook = _redacted_thread_excepthook


def _redacted_excepthook(
    kind: type[BaseException], value: BaseException, tb: TracebackType | None
) -> None:
    text = "".join(traceback.format_exception(kind, value, tb))
    sys.stderr.write(redact(text))


def _redacted_thread_excepthook(args: threading.ExceptHookArgs) -> None:
    if args.exc_type is SystemExit:
        return
    name = args.thread.name if args.thread is not None else "?"
    sys.stderr.write(f"Exception in thread {name}:\n")
    _redacted_excepthook(args.exc_type, args.exc_value or args.exc_type(), args.exc_traceback)
