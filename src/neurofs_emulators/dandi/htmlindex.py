"""An HTML directory index of the object store, as nginx's ``autoindex`` renders one.

``GET /dandiarchive/blobs/<prefix>/`` (a key ending in ``/``, which S3 would answer
``NoSuchKey``) lists the objects and sub-"directories" under that prefix as
``<a href="name">`` lines with their dates and sizes. Generic HTTP mounts need such a page
to find files: rclone's ``http`` backend (``rclone mount :http: --http-url …``) and
httpdirfs both parse the links of a directory page, then ``HEAD`` each file and read it with
ranged GETs of the link, which the object store already serves. The real bucket has no such
page; the emulator adds it so that those tools can be measured on the same server, with the
same network knobs, as neurofs. As nginx does, a GET of the directory's URL without its
final slash answers 301 to the URL with it (httpdirfs strips the slash of the URL it is
given). Only ``blobs/`` is indexed, and HEAD of a missing key stays ``NoSuchKey``: zarr keys
and existence probes keep S3's answers.

Only what an unsigned GET may read is listed (embargoed objects are left out). The page is
built from the bucket's lazy key walk (:mod:`.s3listing`) with ``/`` as delimiter, one
1,000-entry page at a time: its cost is the directory's size, never the bucket's.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import replace
from datetime import UTC, datetime
from html import escape
from urllib.parse import quote

from neurofs_emulators.dandi.blobstore import BUCKET
from neurofs_emulators.dandi.s3listing import MAX_KEYS, KeysFrom, ListRequest, list_page

PREFIX = "blobs/"  # the part of the bucket the index covers

# A key's (size, last modified) when an unsigned GET may read it, else None.
Readable = Callable[[str], tuple[int, datetime] | None]

_NAME_WIDTH = 50  # nginx pads names to this column before the date


def is_directory(keys_from: KeysFrom, prefix: str) -> bool:
    """Whether some key lies under ``prefix`` (the first key from it is the only one read)."""
    first = next(keys_from(prefix), None)
    return first is not None and first.startswith(prefix)


def directory_entries(
    keys_from: KeysFrom, prefix: str, readable: Readable
) -> list[tuple[str, tuple[int, datetime] | None]] | None:
    """The entries right under ``prefix`` (which ends in ``/``): ``(name, None)`` for a
    sub-directory (name ends in ``/``), ``(name, (size, modified))`` for an object; None when
    nothing readable lies under the prefix (the page is then a 404, as the key is)."""
    req = ListRequest(
        prefix=prefix,
        delimiter="/",
        max_keys=MAX_KEYS,
        lowest=prefix,
        continuation=None,
        start_after="",
        url_encoded=False,
    )
    entries: list[tuple[str, tuple[int, datetime] | None]] = []
    while True:
        page = list_page(keys_from, req)
        # A sub-directory may hold only embargoed objects; it is listed anyway (its own page
        # then answers 404), as a plain autoindex of the files would.
        entries.extend((p[len(prefix) :], None) for p in page.common_prefixes)
        for key in page.contents:
            described = readable(key)
            if described is not None:
                entries.append((key[len(prefix) :], described))
        if page.resume is None:
            break
        req = replace(req, lowest=page.resume)
    if not entries:
        return None
    # nginx lists directories first, then files, each by name.
    entries.sort(key=lambda e: (e[1] is not None, e[0]))
    return entries


def render(prefix: str, entries: list[tuple[str, tuple[int, datetime] | None]]) -> bytes:
    """nginx's autoindex page for ``/dandiarchive/<prefix>``."""
    title = escape(f"/{BUCKET}/{prefix}")
    lines = [
        f"<html>\r\n<head><title>Index of {title}</title></head>\r\n<body>\r\n",
        f'<h1>Index of {title}</h1><hr><pre><a href="../">../</a>\r\n',
    ]
    for name, described in entries:
        href = quote(name, safe="/-_.~")
        shown = name if len(name) <= _NAME_WIDTH else name[: _NAME_WIDTH - 3] + "..>"
        pad = " " * (_NAME_WIDTH + 1 - len(shown))
        if described is None:
            size_text, stamp = "-", datetime(1970, 1, 1, tzinfo=UTC)
        else:
            size, stamp = described
            size_text = str(size)
        when = stamp.astimezone(UTC).strftime("%d-%b-%Y %H:%M")
        lines.append(f'<a href="{href}">{escape(shown)}</a>{pad}{when} {size_text.rjust(19)}\r\n')
    lines.append("</pre><hr></body>\r\n</html>\r\n")
    return "".join(lines).encode()
