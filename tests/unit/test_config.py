from __future__ import annotations

import json
import logging
import os

import pytest

from neurofs import secrets
from neurofs.config import load_config, parse_size
from neurofs.errors import ConfigError


@pytest.mark.parametrize(
    ("text", "value"),
    [
        ("1024", 1024),
        ("1KiB", 1024),
        ("20GiB", 20 * 1024**3),
        ("1.5G", int(1.5 * 1024**3)),
        ("500M", 500 * 1024**2),
        (" 2 TiB ", 2 * 1024**4),
    ],
)
def test_parse_size(text, value):
    assert parse_size(text) == value


@pytest.mark.parametrize("text", ["", "abc", "1XB", "-1G"])
def test_parse_size_rejects(text):
    with pytest.raises(ValueError):
        parse_size(text)


def write(tmp_path, text, mode=0o600):
    path = tmp_path / "config.toml"
    path.write_text(text)
    os.chmod(path, mode)
    return path


def test_no_file_at_default_place_mounts_public_dandi(tmp_path, monkeypatch):
    monkeypatch.setenv("XDG_CONFIG_HOME", str(tmp_path))
    config = load_config(None)
    assert [(s.kind, s.name, s.url) for s in config.source] == [
        ("dandi", "dandi", "https://api.dandiarchive.org/api")
    ]


def test_explicit_missing_file_is_an_error(tmp_path):
    with pytest.raises(ConfigError, match="does not exist"):
        load_config(tmp_path / "nope.toml")


def test_token_in_readable_file_is_refused(tmp_path):
    path = write(
        tmp_path,
        '[[source]]\nkind="dandi"\nname="d"\nurl="http://x/api"\ntoken="abcd1234"\n',
        0o644,
    )
    with pytest.raises(ConfigError, match="chmod 600"):
        load_config(path)


def test_token_from_env_and_redacted_view(tmp_path, monkeypatch):
    monkeypatch.setenv("MY_KEY", "env-token-value")
    path = write(
        tmp_path,
        '[[source]]\nkind="dandi"\nname="d"\nurl="http://x/api/"\ntoken_env="MY_KEY"\n',
        0o644,
    )
    config = load_config(path)
    assert config.source[0].resolved_token() == "env-token-value"
    assert config.source[0].url == "http://x/api"
    shown = json.dumps(config.redacted())
    assert "env-token-value" not in shown
    assert '"authenticated": true' in shown


def test_file_token_is_masked(tmp_path):
    path = write(
        tmp_path, '[[source]]\nkind="dandi"\nname="d"\nurl="http://x/api"\ntoken="file-token-123"\n'
    )
    shown = json.dumps(load_config(path).redacted())
    assert "file-token-123" not in shown and secrets.MASK in shown


@pytest.mark.parametrize(
    ("body", "match"),
    [
        ('[[source]]\nkind="nope"\nname="d"\nurl="http://x"\n', "kind"),
        ('[[source]]\nkind="dandi"\nname="a/b"\nurl="http://x"\n', "name"),
        ('[[source]]\nkind="dandi"\nname="d"\nurl="ftp://x"\n', "url"),
        ('[[source]]\nkind="dandi"\nname="d"\nurl="http://x"\nextra=1\n', "extra"),
        (
            '[[source]]\nkind="dandi"\nname="d"\nurl="http://x"\n[[source]]\nkind="dandi"\nname="d"\nurl="http://y"\n',
            "share a name",
        ),
        ('[cache]\nsize="lots"\n', "size"),
        ("not = [toml", "config.toml"),
    ],
)
def test_invalid_configs_give_clear_errors(tmp_path, body, match):
    with pytest.raises(ConfigError, match=match):
        load_config(write(tmp_path, body))


def test_log_filter_masks_registered_secrets(caplog):
    secrets.register("very-secret-token")
    logger = logging.getLogger("neurofs.test")
    handler_filter = secrets.RedactingFilter()
    record = logger.makeRecord(
        "x",
        logging.INFO,
        "f",
        1,
        "token %s at %s",
        ("very-secret-token", "http://s3/x?X-Amz-Signature=abc&a=1"),
        None,
    )
    handler_filter.filter(record)
    text = record.getMessage()
    assert "very-secret-token" not in text and "abc" not in text and "a=1" in text
