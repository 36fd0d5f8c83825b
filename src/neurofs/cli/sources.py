"""``neurofs ls-sources``: each configured source, whether it answers, and who we are there.

Each service's own "who am I" route tells whether the token is taken:

| kind | reachable when this answers | who am I |
|---|---|---|
| dandi | ``GET info/`` | ``GET users/me/`` (``Authorization: token …``) |
| webknossos | ``GET api/buildinfo`` | ``GET api/v<N>/user`` (``X-Auth-Token``) |
| cave | ``GET schema/api/v2/type`` | ``GET auth/api/v1/user/cache`` (``Authorization: Bearer …``) |

A 401 or 403 from the "who am I" route means the token is refused.
"""

from __future__ import annotations

import contextlib
import json
import sys
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

import click
import httpx

from neurofs import secrets
from neurofs.config import SourceConfig, load_config
from neurofs.errors import ConfigError
from neurofs.sources.cave.api import token_from_file
from neurofs.sources.webknossos.api import choose_version
from neurofs.sources.webknossos.models import BuildInfo

TIMEOUT_SECONDS = 10.0
PROBES = {"dandi": "info/", "webknossos": "api/buildinfo", "cave": "schema/api/v2/type"}


@dataclass
class SourceStatus:
    name: str
    kind: str
    url: str
    reachable: bool
    error: str | None
    # "anonymous", "signed in", "token refused" or "unknown" (not reachable)
    auth: str
    user: str | None = None
    note: str | None = None

    @property
    def ok(self) -> bool:
        return self.reachable and self.auth != "token refused"


def _token(source: SourceConfig) -> str | None:
    token = source.resolved_token()
    if token is None and source.kind == "cave":
        token = token_from_file(source.url)
    return token


def _headers(kind: str, token: str) -> dict[str, str]:
    if kind == "dandi":
        return {"Authorization": f"token {token}"}
    if kind == "webknossos":
        return {"X-Auth-Token": token}
    return {"Authorization": f"Bearer {token}"}


def _whoami_path(kind: str, client: httpx.Client) -> str:
    if kind == "dandi":
        return "users/me/"
    if kind == "webknossos":
        info = BuildInfo.model_validate(client.get("api/buildinfo").json())
        return f"api/v{choose_version(info)}/user"
    return "auth/api/v1/user/cache"


def _who(kind: str, body: Any) -> tuple[str | None, str | None]:
    """(user, note) from a "who am I" answer."""
    if not isinstance(body, dict):
        return None, None
    if kind == "dandi":
        name = body.get("name")
        username = body.get("username")
        return (f"{username} ({name})" if name else username), None
    if kind == "webknossos":
        full = " ".join(str(body.get(k, "")) for k in ("firstName", "lastName")).strip()
        email = body.get("email")
        return (f"{full} <{email}>" if email else full or None), None
    name, email = body.get("name"), body.get("email")
    note = "terms of service not accepted" if body.get("missing_tos") else None
    return (f"{name} <{email}>" if email else name), note


def check(source: SourceConfig) -> SourceStatus:
    url = secrets.redact_url(source.url)
    status = SourceStatus(source.name, source.kind, url, False, None, "unknown")
    token = _token(source)
    if token:
        secrets.register(token)
    base = source.url.rstrip("/") + "/"
    try:
        with httpx.Client(base_url=base, timeout=TIMEOUT_SECONDS) as client:
            probe = client.get(PROBES[source.kind])
            if probe.status_code >= 500:
                status.error = f"{PROBES[source.kind]} answered HTTP {probe.status_code}"
                return status
            status.reachable = True
            if not token:
                status.auth = "anonymous"
                return status
            whoami = _whoami_path(source.kind, client)
            answer = client.get(whoami, headers=_headers(source.kind, token))
    except (httpx.HTTPError, ValueError, ConfigError) as exc:
        status.reachable = False
        status.error = secrets.redact(str(exc) or type(exc).__name__)
        return status
    if answer.status_code in (401, 403):
        status.auth = "token refused"
        status.note = f"HTTP {answer.status_code}"
    elif answer.is_success:
        status.auth = "signed in"
        with contextlib.suppress(ValueError):  # signed in, but the answer says no more
            status.user, status.note = _who(source.kind, answer.json())
    else:
        status.auth = "unknown"
        status.note = f"who-am-I answered HTTP {answer.status_code}"
    return status


def _describe(s: SourceStatus) -> str:
    reach = "reachable" if s.reachable else f"UNREACHABLE ({s.error})"
    auth = s.auth
    if s.user:
        auth += f" as {s.user}"
    if s.note:
        auth += f" ({s.note})"
    return f"{s.name:<12} {s.kind:<11} {s.url}\n{'':<12} {reach}; {auth}"


@click.command("ls-sources")
@click.option("--config", "config_path", type=click.Path(path_type=Path), help="Config file.")
@click.option("--json", "as_json", is_flag=True, help="Machine-readable output.")
def ls_sources(config_path: Path | None, as_json: bool) -> None:
    """List the configured sources: reachable or not, and signed in as whom."""
    secrets.install_log_filter()
    try:
        config = load_config(config_path)
    except ConfigError as exc:
        raise click.ClickException(secrets.redact(str(exc))) from None
    results = [check(source) for source in config.source]
    if as_json:
        click.echo(json.dumps([{**asdict(r), "ok": r.ok} for r in results], indent=2))
    else:
        for r in results:
            click.echo(_describe(r))
    if not all(r.ok for r in results):
        sys.exit(1)
