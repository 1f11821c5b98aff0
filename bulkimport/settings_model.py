"""Every setting: typed, documented and checked. The one place the environment is read.

Use ``bulkimport.config.settings()``, not this module: it imports this one on its first call, so a command
that needs no setting (``bulkimport --help``) does not pay for pydantic. docs/configuration.md is generated
from this model (``python -m bulkimport.config --markdown``).
"""

from __future__ import annotations

import re
from pathlib import Path
from typing import Annotated, get_args

from pydantic import AliasChoices, Field, SecretStr, ValidationError, field_validator
from pydantic.fields import FieldInfo
from pydantic_settings import BaseSettings, SettingsConfigDict

from bulkimport.config import masked
from bulkimport.errors import ConfigError

DEFAULT_REDIS_PORT = 6399
Count = Annotated[int, Field(ge=1)]
Port = Annotated[int, Field(ge=1, le=65535)]
_POSTGRES = ("postgresql://", "postgres://")
_MEMORY = re.compile(r"\s*\d+(\.\d+)?\s*([KMGT]i?)?B\s*", re.IGNORECASE)


def _shown(default: str, accepts: str | None = None, kind: str | None = None) -> dict:
    """How the docs show a default computed at run time, and what a value may be when the type does not say."""
    return {k: v for k, v in {"shown": default, "accepts": accepts, "kind": kind}.items() if v}


class Settings(BaseSettings):
    """bulkimport's settings, from BULKIMPORT_* environment variables and a few standard ones.

    An empty variable counts as unset. Settings under BULKIMPORT_HOME (registry, lake, uploads) are
    properties, so pointing BULKIMPORT_HOME elsewhere moves them all.
    """

    model_config = SettingsConfigDict(env_prefix="BULKIMPORT_", env_ignore_empty=True, frozen=True)

    # Where things live
    home: Path = Field(
        default_factory=lambda: Path.home() / ".bulkimport",
        description="Where the registry, lake, uploads and the private Redis keep their files.",
        json_schema_extra=_shown("~/.bulkimport", "a folder (created when missing)"),
    )
    db_url: str | None = Field(
        None,
        description="The job registry: a SQLite file, or PostgreSQL for several hosts.",
        json_schema_extra=_shown(
            "$BULKIMPORT_HOME/jobs.sqlite", "a file path, or postgresql://user:password@host/db", "path or URL"
        ),
    )
    lake_catalog_url: str | None = Field(
        None,
        validation_alias="BULKIMPORT_LAKE_CATALOG",
        description="The DuckLake catalog.",
        json_schema_extra=_shown(
            "$BULKIMPORT_HOME/lake/catalog.sqlite", "a file path, or a postgresql:// URL", "path or URL"
        ),
    )
    lake_data_url: str | None = Field(
        None,
        validation_alias="BULKIMPORT_LAKE_DATA",
        description="The lake's Parquet files and, when remote, the uploads.",
        json_schema_extra=_shown("$BULKIMPORT_HOME/lake/data", "a folder, or s3://bucket/prefix", "path or URL"),
    )
    datasets_dir: Path | None = Field(
        None,
        validation_alias="BULKIMPORT_DATASETS",
        description="A folder of extra dataset modules (besides bulkimport/datasets/).",
        json_schema_extra=_shown("unset", "a folder"),
    )
    users_file: Path | None = Field(
        None,
        description="Users, roles, brands, password hashes and token hashes (0600).",
        json_schema_extra=_shown("$BULKIMPORT_HOME/users.json", "a file path"),
    )
    xdg_config_home: Path = Field(
        default_factory=lambda: Path.home() / ".config",
        validation_alias="XDG_CONFIG_HOME",
        description="`bulkimport login` keeps the token in $XDG_CONFIG_HOME/bulkimport/token (0600).",
        json_schema_extra=_shown("~/.config", "a folder"),
    )
    # The broker
    redis_url_given: str | None = Field(
        None,
        validation_alias="REDIS_URL",
        repr=False,  # may carry a password
        description=(
            "The broker. When unset, `bulkimport up` starts a private redis-server on 127.0.0.1 with a random "
            "password kept in $BULKIMPORT_HOME/redis.password; shown and logged with its password masked."
        ),
        json_schema_extra=_shown("redis://127.0.0.1:6399/0", "a redis://, rediss:// or unix:// URL", "URL"),
    )
    redis_port: Port = Field(DEFAULT_REDIS_PORT, description="The port of that private Redis.")
    queue: str = Field(
        "bulkimport",
        pattern=r"^[\w.-]+$",
        description="The dramatiq queue both actors use.",
        json_schema_extra=_shown("bulkimport", "letters, digits, '.', '_' and '-'"),
    )
    # Workers
    worker_processes: Count = Field(1, description="Worker processes `bulkimport worker` and `up` start.")
    worker_threads: Count = Field(2, description="Threads per worker process.")
    max_attempts: Count = Field(
        3, description='Attempts per job phase (crashes included) before the job fails with "gave up after N".'
    )
    reap_interval_s: Count = Field(
        30, validation_alias="BULKIMPORT_REAP_INTERVAL", description="Seconds between a worker's checks for stuck jobs."
    )
    # Reading and staging
    chunk_rows: Count = Field(50_000, description="Rows read and validated at a time.")
    fast_path: bool = Field(
        True,
        description="Stage through DuckDB and compiled checks where that provably gives the same rows as the "
        "careful path; 0 always takes the careful path.",
    )
    duckdb_memory: str = Field(
        "256MB",
        description="DuckDB's memory limit per connection; larger work spills to $BULKIMPORT_HOME/tmp.",
        json_schema_extra=_shown("256MB", "a size such as 256MB, 1.5GB or 1GiB"),
    )
    lake_busy_s: int = Field(
        120,
        ge=0,
        validation_alias="BULKIMPORT_LAKE_BUSY_SECONDS",
        description="How long a lake write waits out lock conflicts with other writers (retrying with backoff) "
        "before its attempt fails; 0 tries once.",
    )
    xlsx_max_mb: Count = Field(64, description="Largest total size a workbook's parts may inflate to.")
    xlsx_max_strings: Count = Field(1_000_000, description="Most shared strings a workbook may hold.")
    replace_guard_percent: int = Field(
        20,
        ge=0,
        le=100,
        description="A replace import that deletes more than this share of its brand's production rows is "
        "approved only with an explicit confirmation.",
    )
    # Lake storage in S3
    s3_endpoint: str | None = Field(
        None,
        description="An S3-compatible server (MinIO and friends): path-style URLs, plain HTTP for http://.",
        json_schema_extra=_shown("unset (AWS)", "host:port or an http(s):// URL", "URL"),
    )
    s3_region: str = Field(
        "us-east-1",
        validation_alias=AliasChoices("BULKIMPORT_S3_REGION", "AWS_REGION"),
        description="The bucket's region (AWS_REGION when BULKIMPORT_S3_REGION is unset).",
    )
    aws_access_key_id: SecretStr | None = Field(
        None, validation_alias="AWS_ACCESS_KEY_ID", description="The key for the lake's S3 storage."
    )
    aws_secret_access_key: SecretStr | None = Field(
        None, validation_alias="AWS_SECRET_ACCESS_KEY", description="Its secret."
    )
    aws_session_token: SecretStr | None = Field(
        None, validation_alias="AWS_SESSION_TOKEN", description="A temporary session's token, with those."
    )
    # The dashboard
    dashboard_port: Port = Field(8501, description="The dashboard's port for `bulkimport up`.")
    dashboard_host: str = Field(
        "localhost",
        description="The host name people use to reach the dashboard (printed, and given to Streamlit).",
    )
    dashboard_address: str = Field(
        "127.0.0.1",
        description="The interface the dashboard listens on; 0.0.0.0 for every interface (put HTTPS in front).",
    )
    upload_max_mb: Count = Field(200, description="Largest file the dashboard accepts (the CLI takes bigger ones).")
    session_idle_minutes: int = Field(
        60, ge=0, description="A dashboard login ends after this long without a click (0: at the next click)."
    )
    session_hours: Count = Field(12, description="... and this long after it began (the cookie's lifetime too).")
    login_checks: Count = Field(
        2,
        description="Password checks (argon2, 64 MiB each) one dashboard process runs at once; more wait up to "
        "10 s, then are told to try again.",
    )
    preview_memory_mb: Count = Field(
        1536, description="Address space of the child process a dashboard preview runs in."
    )
    preview_seconds: Count = Field(
        60, description="CPU time of that child (it is stopped after twice this much wall time)."
    )
    # Who acts
    token: SecretStr | None = Field(
        None, description="Your personal API token for the CLI and `bi.*` (instead of `bulkimport login`)."
    )

    @field_validator("home", "datasets_dir", "xdg_config_home", mode="after")
    @classmethod
    def _folder(cls, path: Path | None) -> Path | None:
        if path is not None and path.expanduser().is_file():
            raise ValueError("a file, not a folder")
        return path.expanduser() if path else None

    @field_validator("home", mode="after")
    @classmethod
    def _absolute(cls, path: Path) -> Path:
        return path.resolve()  # children started in another working folder must find the same home

    @field_validator("db_url", "lake_catalog_url", mode="after")
    @classmethod
    def _file_or_postgres(cls, value: str | None) -> str | None:
        if value and "://" in value and not value.startswith(_POSTGRES):
            raise ValueError("not a postgresql:// URL")
        return value

    @field_validator("lake_data_url", mode="after")
    @classmethod
    def _folder_or_s3(cls, value: str | None) -> str | None:
        if value and "://" in value and not value.startswith("s3://"):
            raise ValueError("not an s3:// URL")
        return value

    @field_validator("redis_url_given", mode="after")
    @classmethod
    def _redis(cls, value: str | None) -> str | None:
        if value and not value.startswith(("redis://", "rediss://", "unix://")):
            raise ValueError("not a Redis URL")
        return value

    @field_validator("duckdb_memory", mode="after")
    @classmethod
    def _size(cls, value: str) -> str:
        if not _MEMORY.fullmatch(value):
            raise ValueError("not a size")
        return value

    @field_validator("token", mode="after")
    @classmethod
    def _stripped(cls, value: SecretStr | None) -> SecretStr | None:
        text = value.get_secret_value().strip() if value else ""
        return SecretStr(text) if text else None

    # Derived: under home unless set, and the names the code has always used.
    @property
    def registry_path(self) -> Path | str:
        """A SQLite file, or a postgresql:// URL (see config.is_postgres)."""
        return _path_or_url(self.db_url, self.home / "jobs.sqlite", _POSTGRES)

    @property
    def lake_catalog(self) -> Path | str:
        return _path_or_url(self.lake_catalog_url, self.home / "lake" / "catalog.sqlite", _POSTGRES)

    @property
    def lake_data(self) -> Path | str:
        """A local folder, or an s3://bucket/prefix URL (see config.is_s3)."""
        return _path_or_url(self.lake_data_url, self.home / "lake" / "data", ("s3://",))

    @property
    def uploads(self) -> Path:
        return self.home / "uploads"

    @property
    def redis_password_file(self) -> Path:
        return self.home / "redis.password"

    @property
    def redis_url_from_env(self) -> bool:
        return self.redis_url_given is not None

    @property
    def redis_url(self) -> str:
        """REDIS_URL, else the private Redis's, with its password when the file is there (read each time:
        `bulkimport up` writes it after this process may have read its settings)."""
        if self.redis_url_given:
            return self.redis_url_given
        try:
            password = self.redis_password_file.read_text().strip()
        except OSError:
            password = ""
        auth = f":{password}@" if password else ""
        return f"redis://{auth}127.0.0.1:{self.redis_port}/0"

    @property
    def replace_guard_share(self) -> float:
        return self.replace_guard_percent / 100


def _path_or_url(raw: str | None, default: Path, remote: tuple[str, ...]) -> Path | str:
    """A URL kept as text (Path would fold its '//'), anything else as a path."""
    if not raw:
        return default
    return raw if raw.startswith(remote) else Path(raw)


def variable(name: str, field: FieldInfo) -> str:
    """The environment variable a field is read from."""
    alias = field.validation_alias
    if isinstance(alias, AliasChoices):
        return " or ".join(map(str, alias.choices))
    return alias or f"BULKIMPORT_{name.upper()}"


def _every_variable() -> tuple[str, ...]:
    names = [variable(n, f) for n, f in Settings.model_fields.items()]
    return ("HOME", *(v for name in names for v in name.split(" or ")))


VARIABLES = _every_variable()  # what the settings read (HOME too: it places the defaults)


def _extra(field: FieldInfo) -> dict:
    return field.json_schema_extra if isinstance(field.json_schema_extra, dict) else {}


def accepts(field: FieldInfo) -> str:
    """What a field accepts, in words: for its error message and its line in the docs."""
    if "accepts" in _extra(field):
        return _extra(field)["accepts"]
    if field.annotation is bool:
        return "1 or 0 (also true/false, yes/no, on/off)"
    if field.annotation is int:
        low = next((m.ge for m in field.metadata if hasattr(m, "ge")), None)
        high = next((m.le for m in field.metadata if hasattr(m, "le")), None)
        if low is not None and high is not None:
            return f"a whole number from {low} to {high}"
        return f"a whole number >= {low}" if low is not None else "a whole number"
    return "any text"


_KINDS = {bool: "boolean", int: "integer", Path: "path", SecretStr: "secret", str: "text"}


def kind(field: FieldInfo) -> str:
    if "kind" in _extra(field):
        return _extra(field)["kind"]
    types = get_args(field.annotation) or (field.annotation,)  # X | None: X
    return next(_KINDS[t] for t in types if t in _KINDS)


def default(field: FieldInfo) -> str:
    if "shown" in _extra(field):
        return _extra(field)["shown"]
    if field.default is None:
        return "unset"
    return str(int(field.default) if isinstance(field.default, bool) else field.default)


def load() -> Settings:
    """Read and check every setting; a ConfigError names each bad variable and what it accepts."""
    try:
        return Settings()
    except ValidationError as exc:
        raise ConfigError("\n".join(_problem(error) for error in exc.errors())) from None


def _problem(error: dict) -> str:
    key = str(error["loc"][0]) if error["loc"] else ""
    for name, field in Settings.model_fields.items():
        if key == name or key in variable(name, field).split(" or "):
            env = key if key.isupper() else variable(name, field)
            # A secret is not repeated, a URL's password is masked.
            got = "" if kind(field) == "secret" else f", got {masked(error['input'])!r}"
            return f"{env} must be {accepts(field)}{got}"
    return f"bad setting: {error['msg']}"


def markdown() -> str:
    """docs/configuration.md: every setting, from the model."""
    lines = [
        "# Configuration",
        "",
        "<!-- Generated by `python -m bulkimport.config --markdown > docs/configuration.md`"
        " from bulkimport/settings_model.py; tests/test_config.py fails when this file is stale. -->",
        "",
        "Every setting is an environment variable. An empty variable counts as unset. Each process checks them",
        "all when it starts: a bad value stops the command (exit 2), the worker and the dashboard with a message",
        "naming the variable and what it accepts; from Python, `bulkimport.config.settings()` raises",
        "`bulkimport.errors.ConfigError`.",
        "",
        "| variable | type | default | accepts | what it does |",
        "|---|---|---|---|---|",
    ]
    for name, field in Settings.model_fields.items():
        cells = (f"`{variable(name, field)}`", kind(field), f"`{default(field)}`", accepts(field), field.description)
        lines.append("| " + " | ".join(str(c).replace("|", "\\|") for c in cells) + " |")
    return "\n".join(lines) + "\n"
