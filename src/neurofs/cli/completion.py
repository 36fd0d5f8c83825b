"""``neurofs completion bash|zsh|fish``: the shell completion script (click's own)."""

from __future__ import annotations

import click
from click.shell_completion import get_completion_class


@click.command()
@click.argument("shell", type=click.Choice(["bash", "zsh", "fish"]))
@click.pass_context
def completion(ctx: click.Context, shell: str) -> None:
    """Print the completion script for SHELL.

    \b
    bash:  neurofs completion bash > ~/.local/share/bash-completion/completions/neurofs
    zsh:   neurofs completion zsh > "${fpath[1]}/_neurofs"
    fish:  neurofs completion fish > ~/.config/fish/completions/neurofs.fish
    """
    root = ctx.find_root().command
    cls = get_completion_class(shell)
    assert cls is not None  # the choices are click's own shells
    click.echo(cls(root, {}, "neurofs", "_NEUROFS_COMPLETE").source())
