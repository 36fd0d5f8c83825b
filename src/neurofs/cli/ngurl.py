"""``neurofs ng-url PATH``: view an OME-Zarr layer of a mount in neuroglancer.

neuroglancer runs in a browser and reads volumes over HTTP, so this command serves the
mount's files read-only on loopback (with the CORS headers a page of another origin needs)
and prints a neuroglancer URL whose state shows the layer.
"""

from __future__ import annotations

import contextlib
import logging
import signal
import sys
import threading
from collections.abc import Iterator
from pathlib import Path
from types import FrameType

import click

from neurofs.cli.file_server import CLIENT_PREFIX, FileServer, base_url
from neurofs.cli.mounts import find_mount_root
from neurofs.cli.neuroglancer import NgUrlError, find_layer, viewer_state
from neurofs.neuroglancer import neuroglancer_url

DEFAULT_CLIENT = "https://neuroglancer-demo.appspot.com/"


def client_directory(path: Path) -> Path:
    """The directory holding neuroglancer's ``index.html``: the one given, or its ``client/``
    (the neuroglancer Python package keeps the client in ``static/client``)."""
    for candidate in (path, path / "client"):
        if (candidate / "index.html").is_file():
            return candidate
    raise NgUrlError(f"no neuroglancer client (index.html) in {path}")


@contextlib.contextmanager
def _stop_on_sigterm() -> Iterator[None]:
    def handler(signum: int, frame: FrameType | None) -> None:
        raise KeyboardInterrupt

    previous = signal.signal(signal.SIGTERM, handler)
    try:
        yield
    finally:
        signal.signal(signal.SIGTERM, previous)


@click.command("ng-url")
@click.argument("path", type=click.Path(exists=True, file_okay=False, path_type=Path))
@click.option(
    "--port", type=click.IntRange(0, 65535), default=0, help="Port (default: a free one)."
)
@click.option("--bind", default="127.0.0.1", show_default=True, help="Address to listen on.")
@click.option(
    "--client", default=DEFAULT_CLIENT, show_default=True, help="neuroglancer client URL."
)
@click.option(
    "--client-dir",
    type=click.Path(exists=True, file_okay=False, path_type=Path),
    help="A neuroglancer client to serve too, and to point the URL at (works offline).",
)
@click.option("--layout", type=click.Choice(["4panel", "xy"]), default="4panel", show_default=True)
@click.option("--no-serve", is_flag=True, help="Only print the URL (needs --port).")
@click.option(
    "--log-level",
    default="info",
    type=click.Choice(["debug", "info", "warning", "error"], case_sensitive=False),
    help="debug logs every request.",
)
def ng_url(
    path: Path,
    port: int,
    bind: str,
    client: str,
    client_dir: Path | None,
    layout: str,
    no_serve: bool,
    log_level: str,
) -> None:
    """Serve the mount holding PATH (an .ome.zarr layer or one of its mags) read-only over
    HTTP and print a neuroglancer URL that shows it."""
    logging.basicConfig(
        level=getattr(logging, log_level.upper()),
        format="%(asctime)s %(levelname)s %(name)s: %(message)s",
        stream=sys.stderr,
    )
    try:
        root = find_mount_root(path)
        if root is None:
            raise NgUrlError(f"{path} is not inside a neurofs mount")
        layer = find_layer(path, root)
        client_path = client_directory(client_dir) if client_dir is not None else None
    except NgUrlError as exc:
        raise click.ClickException(str(exc)) from None
    if no_serve:
        if port == 0:
            raise click.UsageError("--no-serve needs --port: the port your own server uses")
        if client_path is not None:
            raise click.UsageError("--no-serve serves nothing, so it takes no --client-dir")
        base = base_url(bind, port)
        click.echo(neuroglancer_url(client, viewer_state(layer, base, layout)))
        return
    try:
        server = FileServer((bind, port), root, client_path)
    except OSError as exc:
        raise click.ClickException(f"cannot listen on {bind}:{port}: {exc.strerror}") from None
    base = base_url(bind, server.server_address[1])
    if client_path is not None:
        client = base.rstrip("/") + CLIENT_PREFIX
    thread = threading.Thread(target=server.serve_forever, name="ng-url", daemon=True)
    with _stop_on_sigterm():
        try:
            thread.start()
            click.echo(f"neurofs: serving {root} read-only at {base}")
            click.echo(neuroglancer_url(client, viewer_state(layer, base, layout)))
            click.echo("neurofs: press Ctrl-C to stop")
            while thread.is_alive():
                thread.join(0.5)
        except KeyboardInterrupt:
            pass
        finally:
            server.shutdown()
            server.server_close()
    click.echo("neurofs: stopped serving")
