"""``/api/dandisets/`` and ``/api/dandisets/{id}/``: the list (filters, ordering, the
archive's search language) and one dandiset."""

from __future__ import annotations

import re
from collections.abc import Callable
from typing import Any

from starlette.requests import Request
from starlette.responses import Response

from neurofs_emulators.dandi import models
from neurofs_emulators.dandi.archive import Archive, Dandiset
from neurofs_emulators.dandi.drf import APIError, QueryParams
from neurofs_emulators.dandi.views.base import json_response
from neurofs_emulators.dandi.views.serializers import Serializers


class DandisetViews(Serializers):
    """Dandisets: the list and one dandiset."""

    async def dandiset_list(self, request: Request) -> Response:
        user = self.authenticate(request)
        q = QueryParams(request)
        show_draft = q.boolean("draft", True)
        show_empty = q.boolean("empty", True)
        show_embargoed = q.boolean("embargoed", False)
        starred = q.boolean("starred", False)
        mine = q.choice("user", ["me"])
        search = request.query_params.get("search", "").replace("\x00", "")
        q.raise_errors()
        if show_embargoed and user is None:
            raise APIError(
                401,
                "Authentication credentials must be provided when attempting to access "
                "embargoed dandisets",
            )
        if mine == "me":
            dandisets = self.archive.owned_dandisets(user)
        else:
            dandisets = self.archive.visible_dandisets(user)
        if not show_draft:
            dandisets = [d for d in dandisets if len(d.versions) > 1]
        if not show_empty:
            dandisets = [d for d in dandisets if d.latest_version.asset_count]
        if not show_embargoed:
            dandisets = [d for d in dandisets if d.embargo_status == "OPEN"]
        if starred:
            if user is None:
                raise APIError(401, "Must be authenticated to filter by starred dandisets.")
            dandisets = []  # nobody has starred anything in the emulated archive
        if search:
            dandisets = search_dandisets(dandisets, search, self.archive)
        dandisets = order_dandisets(dandisets, request.query_params.get("ordering"))
        page, links = self.page(request, dandisets)
        results = []
        for dandiset in page:
            published = dandiset.most_recent_published_version
            draft = dandiset.versions.get("draft")
            results.append(
                models.DandisetListItem(
                    **self.dandiset_base(dandiset, published or draft),
                    most_recent_published_version=(
                        models.DandisetVersionSummary(**self.version_fields(published))
                        if published
                        else None
                    ),
                    draft_version=(
                        models.DandisetVersionSummary(**self.version_fields(draft))
                        if draft
                        else None
                    ),
                )
            )
        return json_response(models.Page[models.DandisetListItem](**links, results=results))

    async def dandiset_detail(self, request: Request) -> Response:
        user = self.authenticate(request)
        dandiset = self.get_dandiset(request)
        self.require_dandiset_access(dandiset, user)
        published = dandiset.most_recent_published_version
        draft = dandiset.versions.get("draft")
        return json_response(
            models.DandisetDetail(
                **self.dandiset_base(dandiset, dandiset.latest_version),
                most_recent_published_version=self.version_child(published) if published else None,
                draft_version=self.version_child(draft) if draft else None,
            )
        )


def order_dandisets(dandisets: list[Dandiset], ordering: str | None) -> list[Dandiset]:
    """DRF OrderingFilter + the archive's ``DandisetOrderingFilter`` (first valid field only)."""
    valid = {"id", "name", "modified", "size", "stars"}
    fields = [f.strip() for f in (ordering or "").split(",") if f.strip().lstrip("-") in valid]
    if not fields:
        return dandisets
    field = fields[0]
    name = field.lstrip("-")
    key: Callable[[Dandiset], Any]
    if name == "id":
        key = lambda d: d.identifier  # noqa: E731
    elif name == "name":
        key = lambda d: d.latest_version.name.casefold()  # noqa: E731
    elif name == "modified":
        key = lambda d: d.latest_version.modified  # noqa: E731
    elif name == "size":
        key = lambda d: d.latest_version.size  # noqa: E731
    else:
        key = lambda d: d.star_count  # noqa: E731
    return sorted(dandisets, key=key, reverse=field.startswith("-"))


_TOKEN_RE = re.compile(
    r'(?P<op_key>[a-z_]+):"(?P<op_qval>[^"]*)"|"(?P<free_quoted>[^"]*)"|(?P<bare>\S+)'
)


_BARE_OP_RE = re.compile(r"^([a-z_]+):(.+)$")


SEARCH_OPERATORS = (
    "created_before",
    "created_after",
    "modified_before",
    "modified_after",
    "published_before",
    "published_after",
    "species",
    "approach",
    "technique",
    "file_type",
    "owner",
)


def _search_error(message: str) -> APIError:
    return APIError(400, {"search": [message]})


def search_dandisets(dandisets: list[Dandiset], query: str, archive: Archive) -> list[Dandiset]:
    """The archive's search: free words must all appear in a version's metadata text
    (case-insensitively); ``key:value`` operators filter structured fields."""
    import difflib
    import json
    from datetime import date

    if len(query) > 1024:
        raise APIError(
            400, {"search": [f"Search query is too long ({len(query)} characters; max 1024)."]}
        )
    if query.count('"') % 2:
        raise _search_error(
            "Unbalanced quote in search query. Remove the stray quote, or wrap the "
            "intended phrase in matched quotes."
        )
    words: list[str] = []
    operators: list[tuple[str, str]] = []
    for match in _TOKEN_RE.finditer(query):
        key, value = match.group("op_key"), match.group("op_qval")
        if key is None and match.group("bare") and (bare := _BARE_OP_RE.match(match.group("bare"))):
            key, value = bare.group(1), bare.group(2)
        if key is not None:
            if key not in SEARCH_OPERATORS:
                close = difflib.get_close_matches(key, SEARCH_OPERATORS, n=1, cutoff=0.6)
                hint = f' Did you mean "{close[0]}"?' if close else ""
                raise _search_error(
                    f'Unknown search operator "{key}".{hint} Wrap the term in double '
                    'quotes (e.g. "foo:bar") to search for it as text.'
                )
            operators.append((key, value or ""))
        else:
            words.append(match.group("free_quoted") or match.group("bare") or "")

    def day(value: str) -> date:
        try:
            return date.fromisoformat(value)
        except ValueError as exc:
            raise APIError(
                400, {"search": [f"Invalid date {value!r}; expected YYYY-MM-DD."]}
            ) from exc

    def keep(d: Dandiset) -> bool:
        texts = [json.dumps(v.metadata, ensure_ascii=False).casefold() for v in d.versions.values()]
        if not all(any(w.casefold() in t for t in texts) for w in words):
            return False
        latest = d.latest_version
        summary = latest.metadata.get("assetsSummary", {})
        for key, value in operators:
            v = value.casefold()
            if key.endswith(("_before", "_after")):
                field = key.rsplit("_", 1)[0]
                if field == "published":
                    pub = d.most_recent_published_version
                    when = pub.created.date() if pub else None
                elif field == "created":
                    when = d.created.date()
                else:
                    when = latest.modified.date()
                if when is None:
                    return False
                limit = day(value)
                if (key.endswith("_before") and not when < limit) or (
                    key.endswith("_after") and not when > limit
                ):
                    return False
            elif key in ("species", "approach", "technique"):
                field = {"technique": "measurementTechnique"}.get(key, key)
                names = [str(x.get("name", "")).casefold() for x in summary.get(field, [])]
                if not any(v in n for n in names):
                    return False
            elif key == "file_type":
                prefix = {
                    "nwb": "application/x-nwb",
                    "image": "image/",
                    "text": "text/",
                    "video": "video/",
                }.get(v, v)
                if not any(
                    str(a.metadata.get("encodingFormat", "")).startswith(prefix)
                    for a in latest.assets.values()
                ):
                    return False
            elif key == "owner":
                owners = [archive.users[u] for u in d.owners if u in archive.users]
                if not any(
                    v
                    in (
                        u.username.casefold(),
                        u.email.casefold(),
                        u.first_name.casefold(),
                        u.last_name.casefold(),
                        u.name.casefold(),
                    )
                    for u in owners
                ):
                    return False
        return True

    return [d for d in dandisets if keep(d)]
