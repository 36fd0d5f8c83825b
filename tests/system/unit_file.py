"""Reading a systemd unit file as systemd does, for the lines the tests run.

Only what the neurofs unit uses: ``[Section]`` headers, ``Key=value`` lines, the ``-`` prefix
of commands, systemd's quoting, ``$$`` for a literal ``$`` and the specifiers ``%h %I %i %E
%%``.
"""

from __future__ import annotations

import re
import shlex
from dataclasses import dataclass
from pathlib import Path


@dataclass
class Command:
    argv: list[str]
    ignore_failure: bool  # the "-" prefix


def read_unit(path: Path) -> dict[tuple[str, str], list[str]]:
    """``{(section, key): [values in order]}``."""
    entries: dict[tuple[str, str], list[str]] = {}
    section = ""
    for raw in path.read_text().splitlines():
        line = raw.strip()
        if not line or line.startswith(("#", ";")):
            continue
        if line.startswith("[") and line.endswith("]"):
            section = line[1:-1]
            continue
        assert not line.endswith("\\"), f"line continuations are not handled: {line}"
        key, sep, value = line.partition("=")
        assert sep, f"not a Key=value line: {line}"
        entries.setdefault((section, key.strip()), []).append(value.strip())
    return entries


def command(line: str, specifiers: dict[str, str]) -> Command:
    """An Exec*= value as the argv systemd runs."""
    ignore_failure = line.startswith("-")
    line = line.removeprefix("-")
    assert not line.startswith(("@", "+", "!", ":")), f"prefix not handled: {line}"
    argv = [_expand(word, specifiers) for word in shlex.split(line)]
    return Command(argv, ignore_failure)


def _expand(word: str, specifiers: dict[str, str]) -> str:
    def specifier(m: re.Match[str]) -> str:
        letter = m.group(1)
        if letter == "%":
            return "%"
        assert letter in specifiers, f"specifier %{letter} not handled"
        return specifiers[letter]

    word = re.sub(r"%(.)", specifier, word)
    # Environment variables would be replaced by systemd; the unit uses none, only "$$".
    assert "$" not in word.replace("$$", ""), f"an environment variable in {word}"
    return word.replace("$$", "$")
