"""Mapping untrusted server names to safe, deterministic file names.

Rules (documented in the README):
- ``/`` becomes ``∕`` (U+2215 DIVISION SLASH); NUL and other control characters become
  ``�`` (U+FFFD), so a name can never add a path level or end early;
- ``.`` and ``..`` become ``．`` and ``．．`` (U+FF0E FULLWIDTH FULL STOP);
- the empty name becomes ``�``;
- a name longer than 255 bytes in UTF-8 is cut and ends in ``~`` plus 16 hex digits of its
  SHA-256, so that distinct long names stay distinct.
The same input always gives the same output; names that are already safe are unchanged.
"""

from __future__ import annotations

import hashlib

NAME_MAX = 255
_SLASH = "\u2215"
_REPLACEMENT = "\ufffd"
_DOT = "\uff0e"


def safe_name(name: str) -> str:
    if name in (".", ".."):
        return _DOT * len(name)
    if not name:
        return _REPLACEMENT
    cleaned = "".join(
        _SLASH if ch == "/" else _REPLACEMENT if (ord(ch) < 32 or ord(ch) == 127) else ch
        for ch in name
    )
    encoded = cleaned.encode("utf-8", errors="surrogatepass")
    if len(encoded) <= NAME_MAX and _is_encodable(cleaned):
        return cleaned
    digest = hashlib.sha256(name.encode("utf-8", errors="surrogatepass")).hexdigest()[:16]
    suffix = "~" + digest
    budget = NAME_MAX - len(suffix)
    # Lone surrogates (undecodable names) cannot be file names: they are dropped from the head,
    # and the hash keeps the result unique.
    head = encoded[:budget].decode("utf-8", errors="ignore")
    return head + suffix


def _is_encodable(text: str) -> bool:
    try:
        text.encode("utf-8")
    except UnicodeEncodeError:
        return False
    return True
