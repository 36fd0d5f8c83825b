"""Configuration: a TOML file validated with pydantic.

```toml
[cache]
dir = "~/.cache/neurofs"     # optional; default: the platform's user cache dir
size = "20GiB"               # optional

[[source]]
kind = "dandi"
name = "dandi"               # the top-level directory in the mount
url = "https://api.dandiarchive.org/api"
token_env = "DANDI_API_KEY"  # optional; the default for DANDI
# token = "..."              # allowed only if the file is private (mode 0600)
```
With no file, the public DANDI Archive is mounted at ``dandi/``.
"""

from __future__ import annotations

import os
import re
import stat
import tomllib
from pathlib import Path
from typing import Any, Literal
from urllib.parse import urlsplit

import platformdirs
from pydantic import (
    BaseModel,
    ConfigDict,
    Field,
    ValidationError,
    field_validator,
    model_validator,
)

from neurofs import secrets
from neurofs.errors import ConfigError
from neurofs.io.durable import private_directory

APP = "neurofs"
PUBLIC_DANDI_URL = "https://api.dandiarchive.org/api"
# Names the shared cache tier, over the configuration file (see CacheConfig.tier).
TIER_ENV = "NEUROFS_TIER"
# The variables the official clients read.
DEFAULT_TOKEN_ENV = {"dandi": "DANDI_API_KEY", "webknossos": "WK_TOKEN", "cave": "CAVE_TOKEN"}
_NAME = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._-]{0,63}$")
_SIZE = re.compile(r"^\s*(\d+(?:\.\d+)?)\s*([KMGT]?)(i?B?)?\s*$", re.IGNORECASE)


def parse_size(text: str | int) -> int:
    """'20GiB', '500M', '1.5G', 1048576 → bytes (binary units; 'B' optional)."""
    if isinstance(text, int):
        return text
    m = _SIZE.match(text)
    if not m:
        raise ValueError(f"not a size: {text!r} (examples: 500MiB, 20GiB)")
    number, unit = float(m.group(1)), m.group(2).upper()
    return int(number * 1024 ** "_KMGT".index(unit or "_"))


def default_config_path() -> Path:
    return Path(platformdirs.user_config_dir(APP)) / "config.toml"


def default_cache_dir() -> Path:
    return Path(platformdirs.user_cache_dir(APP))


def default_log_dir() -> Path:
    return Path(platformdirs.user_log_dir(APP))


def default_state_dir() -> Path:
    """Where kept data lives (rejected writes): survives cache clearing and unmounts."""
    return Path(platformdirs.user_state_dir(APP))


def private_dir(path: Path) -> Path:
    """``path`` created if missing and made 0700 (the user's own data: logs, rejected writes).

    When ``path`` lies inside neurofs's state directory, that directory is made 0700 first,
    so that ``mkdir -p`` never leaves an intermediate level open to others."""
    state = default_state_dir()
    for level in (state, path) if state in path.parents else (path,):
        private_directory(level)
    return path


class SourceConfig(BaseModel):
    model_config = ConfigDict(extra="forbid")

    kind: Literal["dandi", "webknossos", "cave"]
    name: str
    url: str
    token_env: str | None = None
    token: str | None = Field(default=None, repr=False)
    # DANDI: versions with at most this many assets are listed from the flat asset list
    # (sizes and mtimes of every asset), larger ones folder by folder from assets/paths/.
    flat_listing_max_assets: int = Field(default=20_000, ge=0)
    # How long one request is retried (server errors, 429, lost connections) before the
    # reader or writer gets EIO. A server that does not answer at all gives EIO after
    # max(retry_seconds, 10 s) (neurofs.io.http.RetryPolicy).
    retry_seconds: float = Field(default=30.0, ge=0, le=3600)
    # WEBKNOSSOS: plain volume files (<mag>.raw) are offered for mags up to this size.
    raw_max_bytes: int = Field(default=4 * 1024**3, ge=0)
    # WEBKNOSSOS: which datasets appear (all that the token may see, by default).
    organization: str | None = None
    search: str | None = None
    tags: list[str] = Field(default_factory=list)
    folder: str | None = None  # a folder path below the organization's root
    datasets: list[str] = Field(default_factory=list)  # dataset ids: exactly these
    # WEBKNOSSOS: a dataset's sharing token (mount shared datasets without an account).
    sharing_token: str | None = Field(default=None, repr=False)
    sharing_token_env: str | None = None
    # CAVE: the datastacks to mount (the service cannot list them).
    datastacks: list[str] = Field(default_factory=list)

    def resolved_sharing_token(self) -> str | None:
        if self.sharing_token:
            return self.sharing_token
        value = os.environ.get(self.sharing_token_env) if self.sharing_token_env else None
        return value or None

    @field_validator("raw_max_bytes", mode="before")
    @classmethod
    def _raw_size(cls, v: Any) -> int:
        return parse_size(v)

    @field_validator("name")
    @classmethod
    def _valid_name(cls, v: str) -> str:
        if not _NAME.match(v) or v in (".neurofs",):
            raise ValueError(f"{v!r} is not a usable directory name")
        return v

    @field_validator("url")
    @classmethod
    def _valid_url(cls, v: str) -> str:
        if not re.match(r"^https?://[^/\s]+", v):
            raise ValueError(f"{v!r} is not an http(s) URL")
        return v.rstrip("/")

    def resolved_token(self) -> str | None:
        """The token from the file, else from the environment variable (if set)."""
        if self.token:
            return self.token
        env = self.token_env or DEFAULT_TOKEN_ENV.get(self.kind)
        value = os.environ.get(env) if env else None
        return value or None


class CacheConfig(BaseModel):
    model_config = ConfigDict(extra="forbid")

    dir: Path = Field(default_factory=default_cache_dir)
    size: int = 20 * 1024**3
    # The lab's shared cache tier (``neurofs tier``), asked before the origins for public,
    # immutable bytes. ``NEUROFS_TIER`` overrides it (empty: no tier).
    tier: str | None = None
    # Also send private bytes reachable by a signed link (embargoed DANDI data) through the
    # tier: everyone who can reach the tier can then read them. Tokens never go there.
    tier_trusted: bool = False

    @field_validator("tier", mode="before")
    @classmethod
    def _tier(cls, v: Any) -> str | None:
        return cls.valid_tier(v)

    @staticmethod
    def valid_tier(v: Any) -> str | None:
        """A tier URL as configured (None: no tier), or ValueError."""
        if v is None or v == "":
            return None
        text = str(v).rstrip("/")
        parts = urlsplit(text)
        if parts.scheme not in ("http", "https") or not parts.hostname:
            raise ValueError(f"tier must be an http:// or https:// URL, not {text!r}")
        if parts.username or parts.password or parts.query or parts.fragment:
            raise ValueError("tier: a URL without credentials, query or fragment")
        return text

    @model_validator(mode="after")
    def _tier_from_environment(self) -> CacheConfig:
        if TIER_ENV in os.environ:
            self.tier = CacheConfig.valid_tier(os.environ[TIER_ENV])
        return self

    @field_validator("size", mode="before")
    @classmethod
    def _size(cls, v: Any) -> int:
        return parse_size(v)

    @field_validator("dir", mode="before")
    @classmethod
    def _dir(cls, v: Any) -> Path:
        return Path(str(v)).expanduser()


class Config(BaseModel):
    model_config = ConfigDict(extra="forbid")

    source: list[SourceConfig] = Field(default_factory=list)
    cache: CacheConfig = Field(default_factory=CacheConfig)
    # Set by `neurofs demo`: the emulators this mount started (shown in config.json).
    demo: bool = False

    def redacted(self) -> dict[str, Any]:
        """The effective configuration as shown in .neurofs/config.json: no secret values."""
        data = self.model_dump(mode="json")
        for src, model in zip(data["source"], self.source, strict=True):
            src["url"] = secrets.redact_url(model.url)  # a password or ?token= in the URL
            src["token"] = secrets.MASK if model.token else None
            src["sharing_token"] = secrets.MASK if model.sharing_token else None
            src["token_env"] = model.token_env or DEFAULT_TOKEN_ENV.get(model.kind)
            src["authenticated"] = model.resolved_token() is not None
        return data


def default_config() -> Config:
    return Config(source=[SourceConfig(kind="dandi", name="dandi", url=PUBLIC_DANDI_URL)])


def _check_private(path: Path, raw: dict[str, Any]) -> None:
    sources = raw.get("source")
    holds_token = any(
        isinstance(s, dict)
        and (
            s.get("token")
            or s.get("sharing_token")
            # a password in the URL is a secret too
            or (isinstance(s.get("url"), str) and "@" in urlsplit(s["url"]).netloc)
        )
        for s in (sources if isinstance(sources, list) else [])
    )
    mode = path.stat().st_mode
    if holds_token and mode & (stat.S_IRWXG | stat.S_IRWXO):
        raise ConfigError(
            f"{path} holds a token but group or others can read it "
            f"(mode {stat.filemode(mode)}); run: chmod 600 {path}"
        )


def load_config(path: Path | None) -> Config:
    """Load and validate the config file; with no file at the default place, the default.

    Every token it yields is registered for redaction before anything can log it.
    """
    explicit = path is not None
    path = path or default_config_path()
    if not path.exists():
        if explicit:
            raise ConfigError(f"config file {path} does not exist")
        config = default_config()
    else:
        try:
            raw = tomllib.loads(path.read_text())
        except (OSError, UnicodeDecodeError, tomllib.TOMLDecodeError) as exc:
            raise ConfigError(f"{path}: {exc}") from None
        _check_private(path, raw)
        try:
            config = Config.model_validate(raw)
        except ValidationError as exc:
            raise ConfigError(f"{path}: {_describe(exc)}") from None
    names = [s.name for s in config.source]
    if len(set(names)) != len(names):
        raise ConfigError(f"{path}: two sources share a name: {names}")
    for src in config.source:
        secrets.register(src.resolved_token())
        secrets.register(src.resolved_sharing_token())
    return config


def _describe(exc: ValidationError) -> str:
    parts = []
    for err in exc.errors():
        where = ".".join(str(p) for p in err["loc"])
        parts.append(f"{where}: {err['msg']}")
    return "; ".join(parts)
