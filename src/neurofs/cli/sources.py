"""``neurofs ls-sources``: each configured source, whether it answers, and who we are there.

The asking is ``neurofs.sources.identity``; this command only prints the answers (text, or
JSON with ``--json``) and exits 1 when a source is unreachable or refuses its token.
"""

from __future__ import annotations

import json
import logging
import sys
from dataclasses import asdict
from pathlib import Path

import click

from neurofs import secrets
from neurofs.config import load_config
from neurofs.errors import ConfigError
from neurofs.sources.identity import SourceIdentity, identify_all


def _describe(s: SourceIdentity) -> str:
    reach = "reachable" if s.reachable else f"UNREACHABLE ({s.error})"
    auth: str = s.auth
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
    # Retries are not news here: the answers say what failed.
    logging.basicConfig(level=logging.ERROR, stream=sys.stderr)
    secrets.install_log_filter()
    try:
        config = load_config(config_path)
    except ConfigError as exc:
        raise click.ClickException(secrets.redact(str(exc))) from None
    if not config.source:
        # The same refusal as `neurofs mount` gives such a configuration.
        raise click.ClickException("the configuration names no source")
    results = identify_all(config.source)
    if as_json:
        text = json.dumps([{**asdict(r), "ok": r.ok} for r in results], indent=2)
    else:
        text = "\n".join(_describe(r) for r in results)
    if text:
        click.echo(secrets.redact(text))
    if not all(r.ok for r in results):
        sys.exit(1)
