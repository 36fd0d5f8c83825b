"""``neurofs tier config|run``: the lab's shared cache tier, an nginx in front of the origins.

Mounts that name the tier (``[cache] tier``, ``NEUROFS_TIER``) send it their range requests
for public, immutable bytes as ``/o/<scheme>/<host[:port]><path>?<query>`` with the bytes'
content identity in ``X-Neurofs-Key`` (``io/tier.py``). The configuration printed here makes
nginx, with only what it already does:

- proxy those requests to the origins on its allow-list, and refuse (403) any other origin:
  it is never an open proxy;
- cache each 1 MiB slice of an object (the slice module, aligned to neurofs's blocks) under
  the content identity, the origin and path, and the slice, never under the query string
  (presigned URLs carry a signature that changes with every link);
- with ``proxy_cache_lock``, make one origin request for a slice that many nodes miss at the
  same time; evict with ``max_size`` and ``inactive``;
- log requests without their query strings (signatures never reach the logs).
"""

from __future__ import annotations

import os
import shutil
import sys
from dataclasses import dataclass
from pathlib import Path

import click
import httpx
import platformdirs

from neurofs.config import parse_size
from neurofs.io.cache import BLOCK_SIZE

# The public DANDI bucket: where the archive's download links point (blobs and zarr keys).
DANDI_BUCKET = "https://dandiarchive.s3.amazonaws.com"
DEFAULT_LISTEN = "127.0.0.1:8090"
# How long a node waits for another node's fetch of the same slice before fetching it too
# (uncached): a 1 MiB slice at 100 kB/s, with room to spare.
LOCK_SECONDS = 60
# Slices not read for this long are evicted even below max_size.
INACTIVE = "30d"
CA_BUNDLE = "/etc/ssl/certs/ca-certificates.crt"


@dataclass(frozen=True)
class Origin:
    """An origin on the allow-list: its scheme and host[:port] as a mount's URLs name it."""

    scheme: str
    netloc: str

    @classmethod
    def parse(cls, text: str) -> Origin:
        url = httpx.URL(text if "://" in text else f"https://{text}")
        if url.scheme not in ("http", "https") or not url.host:
            raise click.BadParameter(f"{text!r}: an origin is http(s)://host[:port]")
        if url.userinfo or url.query or url.path not in ("", "/"):
            raise click.BadParameter(f"{text!r}: an origin is a scheme and host, nothing more")
        # As httpx spells it in a mount's URLs: lower case, no default port.
        return cls(url.scheme, url.netloc.decode("ascii").lower())

    @property
    def key(self) -> str:
        return f"{self.scheme}://{self.netloc}"

    @property
    def server(self) -> str:
        """``host:port`` for nginx's ``server`` directive."""
        host, _, port = self.netloc.rpartition(":")
        if host and port.isdigit() and not self.netloc.endswith("]"):
            return self.netloc
        return f"{self.netloc}:{443 if self.scheme == 'https' else 80}"


@dataclass(frozen=True)
class TierSettings:
    listen: str
    cache_dir: Path
    max_size: int
    origins: tuple[Origin, ...]
    user: str | None = None


def nginx_config(s: TierSettings) -> str:
    """The whole nginx configuration of a tier (paths absolute, nothing else needed)."""
    cache = s.cache_dir.resolve()
    slices = max(1, s.max_size // BLOCK_SIZE)
    # nginx keeps about 8,000 keys per MiB of its key zone; room for every slice, twice.
    zone_mib = max(8, 2 * slices // 8000 + 1)
    upstreams = "\n".join(
        f"    upstream neurofs_origin_{i} {{\n        server {o.server};\n"
        "        keepalive 16;\n    }"
        for i, o in enumerate(s.origins)
    )
    allowed = "\n".join(
        f'        "{o.key}" "{o.scheme}://neurofs_origin_{i}";' for i, o in enumerate(s.origins)
    )
    https = any(o.scheme == "https" for o in s.origins)
    tls = (
        "            proxy_ssl_server_name on;\n"
        "            proxy_ssl_name $neurofs_hostname;\n"
        "            proxy_ssl_verify on;\n"
        f"            proxy_ssl_trusted_certificate {CA_BUNDLE};\n"
        if https
        else ""
    )
    user = f"user {s.user};\n" if s.user else ""
    return f"""# The neurofs shared cache tier, made by `neurofs tier config`.
{user}worker_processes auto;
pid {cache}/nginx.pid;
# Error lines quote the request with its query string (a presigned URL's signature): only
# critical ones are written. Requests are in access.log, without their queries.
error_log stderr crit;

events {{
    worker_connections 4096;
}}

http {{
    log_format neurofs_tier '$remote_addr [$time_local] "$request_method $uri" $status '
                            '$body_bytes_sent cache=$upstream_cache_status '
                            'key="$http_x_neurofs_key" '
                            '${{request_time}}s';
    access_log {cache}/access.log neurofs_tier;
    client_body_temp_path {cache}/tmp/body;
    proxy_temp_path {cache}/tmp/proxy;
    fastcgi_temp_path {cache}/tmp/fastcgi;
    uwsgi_temp_path {cache}/tmp/uwsgi;
    scgi_temp_path {cache}/tmp/scgi;
    server_tokens off;
    sendfile on;

    proxy_cache_path {cache}/slices levels=2:2 keys_zone=neurofs_tier:{zone_mib}m
                     max_size={s.max_size} inactive={INACTIVE} use_temp_path=off;

    # /o/<scheme>/<host[:port]><path>?<query>, read from the raw request line (still
    # percent-encoded, as the origin expects it).
    map $request_uri $neurofs_origin {{
        "~^/o/(?<o_scheme>https?)/(?<o_netloc>[^/?]+)/" "$o_scheme://$o_netloc";
        default "";
    }}
    map $request_uri $neurofs_netloc {{
        "~^/o/https?/(?<o_netloc>[^/?]+)/" $o_netloc;
        default "";
    }}
    map $neurofs_netloc $neurofs_hostname {{
        "~^(?<o_host>[^:]+)(:[0-9]+)?$" $o_host;
        default "";
    }}
    map $request_uri $neurofs_target {{
        "~^/o/https?/[^/?]+(?<o_target>/.*)$" $o_target;
        default "/";
    }}
    map $request_uri $neurofs_path {{
        "~^/o/https?/[^/?]+(?<o_path>/[^?]*)" $o_path;
        default "/";
    }}
    # The allow-list: an origin not named here gets 403.
    map $neurofs_origin $neurofs_upstream {{
        default "";
{allowed}
    }}

{upstreams}

    server {{
        listen {s.listen};

        location / {{
            return 404;
        }}

        location /o/ {{
            limit_except GET {{
                deny all;
            }}
            if ($neurofs_upstream = "") {{
                return 403;
            }}
            # Only bytes named by their content identity are kept.
            if ($http_x_neurofs_key = "") {{
                return 400;
            }}

            slice {BLOCK_SIZE};
            proxy_cache neurofs_tier;
            proxy_cache_key "$http_x_neurofs_key|$neurofs_origin$neurofs_path|$slice_range";
            proxy_cache_valid 200 206 {INACTIVE};
            proxy_cache_lock on;
            proxy_cache_lock_timeout {LOCK_SECONDS}s;
            proxy_cache_lock_age {LOCK_SECONDS}s;
            proxy_ignore_headers Cache-Control Expires Set-Cookie Vary X-Accel-Expires
                                 X-Accel-Redirect X-Accel-Limit-Rate X-Accel-Buffering
                                 X-Accel-Charset;
            proxy_hide_header Set-Cookie;

            proxy_http_version 1.1;
            proxy_set_header Connection "";
            proxy_set_header Host $neurofs_netloc;
            proxy_set_header Range $slice_range;
            # Nothing of the node's goes to the origin but the request itself.
            proxy_set_header Authorization "";
            proxy_set_header Cookie "";
            proxy_set_header X-Neurofs-Key "";
            proxy_set_header X-Forwarded-For "";
{tls}            proxy_pass $neurofs_upstream$neurofs_target;

            add_header X-Neurofs-Tier $upstream_cache_status always;
        }}
    }}
}}
"""


def _settings(
    listen: str, cache_dir: Path | None, max_size: str, origins: tuple[str, ...], user: str | None
) -> TierSettings:
    try:
        size = parse_size(max_size)
    except ValueError as exc:
        raise click.BadParameter(str(exc), param_hint="--max-size") from None
    parsed = tuple(dict.fromkeys(Origin.parse(o) for o in (origins or (DANDI_BUCKET,))))
    directory = cache_dir or Path(platformdirs.user_cache_dir("neurofs")) / "tier"
    return TierSettings(listen, directory, size, parsed, user)


_options = [
    click.option(
        "--listen",
        default=DEFAULT_LISTEN,
        show_default=True,
        help="Address and port to serve on (0.0.0.0:PORT for the whole cluster).",
    ),
    click.option(
        "--cache-dir",
        type=click.Path(path_type=Path, file_okay=False),
        help="Where nginx keeps the slices and its logs [default: ~/.cache/neurofs/tier].",
    ),
    click.option(
        "--max-size", default="100GiB", show_default=True, help="Disk the slices may use."
    ),
    click.option(
        "--origin",
        "origins",
        multiple=True,
        metavar="URL",
        help=f"An origin to serve (repeatable) [default: {DANDI_BUCKET}].",
    ),
    click.option("--user", help="The user nginx's workers run as (when started as root)."),
]


def _with_options(f):
    for option in reversed(_options):
        f = option(f)
    return f


@click.group()
def tier() -> None:
    """The lab's shared cache tier (nginx) that mounts on many nodes read through."""


@tier.command("config")
@_with_options
def config_command(
    listen: str, cache_dir: Path | None, max_size: str, origins: tuple[str, ...], user: str | None
) -> None:
    """Print the nginx configuration of a tier."""
    click.echo(nginx_config(_settings(listen, cache_dir, max_size, origins, user)), nl=False)


@tier.command("run")
@_with_options
def run_command(
    listen: str, cache_dir: Path | None, max_size: str, origins: tuple[str, ...], user: str | None
) -> None:
    """Run nginx in the foreground as a tier (for tests and small labs)."""
    nginx = shutil.which("nginx") or next(
        (p for p in ("/usr/sbin/nginx", "/sbin/nginx") if os.access(p, os.X_OK)), None
    )
    if nginx is None:
        click.echo("neurofs: tier: nginx is not installed (apt install nginx)", err=True)
        sys.exit(1)
    settings = _settings(listen, cache_dir, max_size, origins, user)
    cache = settings.cache_dir.resolve()
    for sub in ("slices", "tmp"):
        (cache / sub).mkdir(parents=True, exist_ok=True)
    conf = cache / "nginx.conf"
    conf.write_text(nginx_config(settings))
    click.echo(f"neurofs: tier on {listen}, cache {cache}, config {conf}", err=True)
    sys.stderr.flush()
    os.execv(nginx, [nginx, "-p", str(cache), "-e", "stderr", "-c", str(conf), "-g", "daemon off;"])
