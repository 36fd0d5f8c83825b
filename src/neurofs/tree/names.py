"""Mapping untrusted server names to safe, deterministic file names.

Rules (documented in docs/tree.md):
- ``/`` becomes ``∕`` (U+2215 DIVISION SLASH); NUL and other control characters become
  ``�`` (U+FFFD), so a name can never add a path level or end early;
- ``.`` and ``..`` become ``．`` and ``．．`` (U+FF0E FULLWIDTH FULL STOP);
- the empty name becomes ``�``;
- a name longer than 255 bytes in UTF-8 (suffix included) is cut and ends in ``~`` plus 16
  hex digits of its SHA-256, so that distinct long names stay distinct.
The same input always gives the same output; names that are already safe are unchanged.

Within one directory, :func:`unique_names` keeps distinct server names distinct: when two
names would map to the same file name, every one that had to be changed gets ``~`` plus 16
hex digits of the SHA-256 of the server's name appended (before the suffix).
"""

from __future__ import annotations

import hashlib
import re
from collections.abc import Iterable

NAME_MAX = 255
_SLASH = "\u2215"
_REPLACEMENT = "\ufffd"
_DOT = "\uff0e"
_HASH_DIGITS = 16
# What _cleaned replaces: a slash, control characters and DEL.
_UNSAFE = re.compile("[/\x00-\x1f\x7f]")


def _digest(name: str, salt: int = 0) -> str:
    data = name.encode("utf-8", errors="surrogatepass")
    if salt:
        data += b"\0" + str(salt).encode()
    return hashlib.sha256(data).hexdigest()[:_HASH_DIGITS]


def _cleaned(name: str) -> str:
    if name in (".", ".."):
        return _DOT * len(name)
    if not name:
        return _REPLACEMENT
    if _UNSAFE.search(name) is None:  # the common case, without a pass per character
        return name
    return "".join(
        _SLASH if ch == "/" else _REPLACEMENT if (ord(ch) < 32 or ord(ch) == 127) else ch
        for ch in name
    )


def _is_encodable(text: str) -> bool:
    try:
        text.encode("utf-8")
    except UnicodeEncodeError:
        return False
    return True


def _with_hash(cleaned: str, digest: str, suffix: str) -> str:
    """``cleaned`` cut so that ``<head>~<digest><suffix>`` fits in NAME_MAX bytes."""
    tail = "~" + digest + suffix
    budget = NAME_MAX - len(tail.encode("utf-8"))
    # Lone surrogates (undecodable names) cannot be file names: they are dropped from the head,
    # and the hash keeps the result unique.
    head = cleaned.encode("utf-8", errors="surrogatepass")[:budget].decode("utf-8", "ignore")
    return head + tail


def safe_name(name: str, suffix: str = "") -> str:
    """A valid single path component for the server's ``name``, ending in ``suffix``.

    ``suffix`` (a fixed extension such as ``.json``, itself safe and short) counts towards
    the 255-byte limit, so that ``<name><suffix>`` is never too long.
    """
    cleaned = _cleaned(name)
    whole = cleaned + suffix
    if len(whole.encode("utf-8", errors="surrogatepass")) <= NAME_MAX and _is_encodable(whole):
        return whole
    return _with_hash(cleaned, _digest(name), suffix)


def may_be_changed(name: str) -> bool:
    """Whether ``name`` may be one that ``safe_name``/``unique_names`` made for another
    server name (so a look-up of the name as it is may miss it)."""
    return "~" in name or any(ch in name for ch in (_SLASH, _REPLACEMENT, _DOT))


def unique_names(names: Iterable[str], suffix: str = "") -> dict[str, str]:
    """Server name → file name for the entries of one directory, distinct names kept distinct.

    The result depends only on the set of names (not their order). A name that is safe as
    it is keeps itself; a name that had to be changed keeps ``safe_name(name)`` unless
    another entry already maps there, and then gets its hash appended.
    """
    distinct = sorted(set(names))
    result: dict[str, str] = {}
    taken: set[str] = set()
    changed: list[str] = []
    for name in distinct:
        mapped = safe_name(name, suffix)
        if mapped == name + suffix:
            result[name] = mapped
            taken.add(mapped)
        else:
            changed.append(name)
    # Changed names whose plain mapping is shared with another changed name all get hashed,
    # so that which one keeps the plain mapping never depends on the others' order.
    plain = {name: safe_name(name, suffix) for name in changed}
    counts: dict[str, int] = {}
    for mapped in plain.values():
        counts[mapped] = counts.get(mapped, 0) + 1
    for name in changed:
        mapped = plain[name]
        salt = 0
        if counts[mapped] > 1 or mapped in taken:
            mapped = _with_hash(_cleaned(name), _digest(name), suffix)
        while mapped in taken:  # a server that names entries after other entries' hashes
            salt += 1
            mapped = _with_hash(_cleaned(name), _digest(name, salt), suffix)
        result[name] = mapped
        taken.add(mapped)
    return result


def is_valid_name(name: str) -> bool:
    """Whether ``name`` can be one entry of a directory listing."""
    if name in ("", ".", "..") or "/" in name or "\0" in name:
        return False
    try:
        return len(name.encode("utf-8")) <= NAME_MAX
    except UnicodeEncodeError:
        return False


# Segment, supervoxel and root ids are unsigned 64-bit integers.
_MAX_ID = 2**64


def id_of_name(name: str) -> int | None:
    """The id a file name is when ids are written as the servers write them (decimal, no
    sign, no leading zero, no spaces, not 0: one id has one name), else None."""
    if not name.isascii() or not name.isdigit() or name.startswith("0"):
        return None
    value = int(name)
    return value if value < _MAX_ID else None
