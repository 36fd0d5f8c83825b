"""The shared tier, one layer at a time: the nginx configuration ``neurofs tier config``
prints (checked by nginx itself), the mount's configuration of it, and the mount's tier
client against answers made up here (the real nginx is in tests/mount/test_tier.py)."""

from __future__ import annotations

import re
import shutil
import subprocess
from pathlib import Path

import httpx
import pytest
from click.testing import CliRunner

from neurofs.cli.main import main
from neurofs.cli.tier import Origin, TierSettings, nginx_config
from neurofs.config import CacheConfig
from neurofs.io.stats import Stats
from neurofs.io.tier import Tier, tier_url

NGINX = shutil.which("nginx") or "/usr/sbin/nginx"


def _settings(tmp_path: Path, *origins: str) -> TierSettings:
    parsed = tuple(Origin.parse(o) for o in origins)
    return TierSettings("127.0.0.1:8090", tmp_path / "tier", 10 * 2**30, parsed, "root")


def test_nginx_accepts_the_configuration(tmp_path: Path) -> None:
    if not Path(NGINX).exists():
        pytest.fail("nginx is not installed (scripts/setup installs it)")
    settings = _settings(tmp_path, "http://127.0.0.1:9000", "http://localhost:9001")
    conf = tmp_path / "nginx.conf"
    conf.write_text(nginx_config(settings))
    (tmp_path / "tier" / "tmp").mkdir(parents=True)
    check = subprocess.run(
        [NGINX, "-t", "-p", str(tmp_path / "tier"), "-e", "stderr", "-c", str(conf)],
        capture_output=True,
        text=True,
        check=False,
    )
    assert check.returncode == 0, check.stderr


def test_keys_and_logs_never_hold_a_query_string(tmp_path: Path) -> None:
    text = nginx_config(_settings(tmp_path, "http://127.0.0.1:9000"))
    key = re.search(r"proxy_cache_key (.*);", text)
    assert key is not None
    assert "$http_x_neurofs_key" in key.group(1) and "$slice_range" in key.group(1)
    log = text[text.index("log_format") : text.index("access_log")]
    for leak in (
        "$request ",
        "$request_uri",
        "$args",
        "$query_string",
        "$is_args",
        "$neurofs_target",
    ):
        assert leak not in key.group(1) and leak not in log
    assert "error_log stderr crit;" in text  # error lines quote the request line


def test_only_the_listed_origins_are_proxied(tmp_path: Path) -> None:
    text = nginx_config(_settings(tmp_path, "http://127.0.0.1:9000", "https://Bucket.example.org"))
    allowed = re.findall(r'^\s+"(https?://[^"]+)" "(https?)://neurofs_origin_\d+";$', text, re.M)
    assert allowed == [("http://127.0.0.1:9000", "http"), ("https://bucket.example.org", "https")]
    assert "server bucket.example.org:443;" in text and "proxy_ssl_verify on;" in text
    assert 'default "";' in text and "return 403;" in text


def test_origins_are_spelled_as_the_mount_spells_them() -> None:
    assert (
        Origin.parse("https://Bucket.S3.amazonaws.com:443").key == "https://bucket.s3.amazonaws.com"
    )
    assert Origin.parse("127.0.0.1:8080").key == "https://127.0.0.1:8080"
    assert Origin.parse("http://[::1]:8080").server == "[::1]:8080"
    assert Origin.parse("http://host").server == "host:80"
    for bad in ("ftp://h", "http://u:p@h", "http://h/path", "http://h?x=1"):
        with pytest.raises(Exception, match="origin"):
            Origin.parse(bad)


def test_tier_config_command_prints_the_configuration(tmp_path: Path) -> None:
    result = CliRunner().invoke(
        main,
        [
            "tier",
            "config",
            "--origin",
            "http://127.0.0.1:9",
            "--cache-dir",
            str(tmp_path),
            "--max-size",
            "2GiB",
        ],
    )
    assert result.exit_code == 0, result.output
    assert f"max_size={2 * 2**30}" in result.output
    assert '"http://127.0.0.1:9" "http://neurofs_origin_0";' in result.output
    bad = CliRunner().invoke(main, ["tier", "config", "--max-size", "lots"])
    assert bad.exit_code != 0 and "not a size" in bad.output


def test_the_mount_names_its_tier_in_the_file_or_the_environment(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.delenv("NEUROFS_TIER", raising=False)
    assert CacheConfig().tier is None
    assert CacheConfig(tier="http://tier:8090/").tier == "http://tier:8090"
    monkeypatch.setenv("NEUROFS_TIER", "http://other:1")
    assert CacheConfig(tier="http://tier:8090").tier == "http://other:1"
    monkeypatch.setenv("NEUROFS_TIER", "")
    assert CacheConfig(tier="http://tier:8090").tier is None
    monkeypatch.delenv("NEUROFS_TIER")
    for bad in ("tier:8090", "ftp://t", "http://u:p@t", "http://t/?token=x"):
        with pytest.raises(ValueError):
            CacheConfig(tier=bad)


def test_tier_urls_keep_the_origins_encoding_and_never_credentials() -> None:
    signed = "http://127.0.0.1:9/bucket/a%20b/c?X-Amz-Signature=s%2F"
    assert (
        tier_url("http://t:1/", signed)
        == "http://t:1/o/http/127.0.0.1:9/bucket/a%20b/c?X-Amz-Signature=s%2F"
    )
    assert tier_url("http://t:1", "https://b.example.org/k") == "http://t:1/o/https/b.example.org/k"
    assert tier_url("http://t:1", "http://u:p@h/x") is None


def _tier(handler: httpx.MockTransport) -> tuple[Tier, Stats]:
    stats = Stats()
    return Tier("http://tier:1", stats, transport=handler), stats


def _answer(
    status: int, body: bytes, content_range: str | None, cache: str = "MISS"
) -> httpx.MockTransport:
    headers = {"X-Neurofs-Tier": cache}
    if content_range:
        headers["Content-Range"] = content_range

    def handle(request: httpx.Request) -> httpx.Response:
        assert request.headers["X-Neurofs-Key"] == "blob:1"
        assert request.headers["Range"] == "bytes=10-19"
        assert "authorization" not in request.headers
        return httpx.Response(status, content=body, headers=headers)

    return httpx.MockTransport(handle)


async def test_a_hit_is_counted_and_served() -> None:
    tier, stats = _tier(_answer(206, b"0123456789", "bytes 10-19/100", cache="HIT"))
    assert await tier.get_range("http://o/x", "blob:1", 10, 20, 100) == b"0123456789"
    assert stats.get("tier_hits") == 1 and stats.get("tier_bytes") == 10
    await tier.aclose()


@pytest.mark.expect_log("shared tier: dropped a wrong answer")
@pytest.mark.parametrize(
    ("status", "body", "content_range"),
    [
        (206, b"0123456789", "bytes 11-20/100"),  # another range
        (206, b"012345678", "bytes 10-19/100"),  # short
        (206, b"0123456789", "bytes 10-19/101"),  # another object's size
        (200, b"0123456789", None),  # not the whole object
    ],
)
async def test_a_wrong_answer_is_dropped(
    status: int, body: bytes, content_range: str | None
) -> None:
    tier, stats = _tier(_answer(status, body, content_range))
    assert await tier.get_range("http://o/x", "blob:1", 10, 20, 100) is None
    assert stats.get("tier_rejected") == 1 and stats.get("tier_fallbacks") == 1
    assert not tier.down
    await tier.aclose()


@pytest.mark.expect_log("shared tier .* refuses")
async def test_a_refusal_falls_back_without_giving_up_on_the_tier(
    caplog: pytest.LogCaptureFixture,
) -> None:
    tier, stats = _tier(_answer(403, b"", None))
    for _ in range(3):
        assert await tier.get_range("http://o/x", "blob:1", 10, 20, 100) is None
    assert stats.get("tier_fallbacks") == 3 and not tier.down
    assert len([r for r in caplog.records if "refuses o" in r.getMessage()]) == 1
    await tier.aclose()


@pytest.mark.expect_log("shared tier .*: cannot reach it")
async def test_a_tier_that_is_down_is_left_alone_for_a_while(
    caplog: pytest.LogCaptureFixture,
) -> None:
    calls: list[httpx.Request] = []

    def refuse(request: httpx.Request) -> httpx.Response:
        calls.append(request)
        raise httpx.ConnectError("refused", request=request)

    tier, stats = _tier(httpx.MockTransport(refuse))
    for _ in range(5):
        assert await tier.get_range("http://o/x", "blob:1", 10, 20, 100) is None
    assert len(calls) == 1 and tier.down
    assert stats.get("tier_fallbacks") == 1 and stats.get("tier_skipped") == 4
    assert len([r for r in caplog.records if "cannot reach it" in r.getMessage()]) == 1
    await tier.aclose()


async def test_a_range_over_several_slices_is_asked_slice_by_slice_at_once() -> None:
    """nginx fetches the slices of one request one after another: the mount asks for each
    1 MiB slice of a longer range in a request of its own, all at once."""
    mib = 1 << 20
    data = bytes(range(256)) * (16 * mib // 256)
    asked: list[str] = []

    def serve(request: httpx.Request) -> httpx.Response:
        asked.append(request.headers["Range"])
        first, last = (int(v) for v in request.headers["Range"][6:].split("-"))
        headers = {"Content-Range": f"bytes {first}-{last}/{len(data)}"}
        return httpx.Response(206, content=data[first : last + 1], headers=headers)

    tier, stats = _tier(httpx.MockTransport(serve))
    start, end = mib - 10, 3 * mib + 5
    assert await tier.get_range("http://o/x", "blob:1", start, end, len(data)) == data[start:end]
    assert sorted(asked) == sorted(
        [
            f"bytes={mib - 10}-{mib - 1}",
            f"bytes={mib}-{2 * mib - 1}",
            f"bytes={2 * mib}-{3 * mib - 1}",
            f"bytes={3 * mib}-{3 * mib + 4}",
        ]
    )
    assert stats.get("tier_bytes") == end - start and stats.get("tier_fallbacks") == 0
    await tier.aclose()
