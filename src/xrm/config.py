"""Settings: one typed object, read from ``xrm.toml`` and ``XRM_*`` environment variables.

Precedence (highest first): arguments passed to :class:`Settings`, environment variables
(``XRM_STORE_PATH=...``), the TOML file (``./xrm.toml`` or the path in ``XRM_CONFIG``), defaults.

    >>> from xrm.config import Settings
    >>> Settings(store_path="demo.duckdb").store_path.name
    'demo.duckdb'
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any

from pydantic import Field, SecretStr, ValidationError, field_validator
from pydantic_settings import (
    BaseSettings,
    PydanticBaseSettingsSource,
    SettingsConfigDict,
    TomlConfigSettingsSource,
)

from xrm.exceptions import ConfigError

__all__ = ["Settings", "load_settings"]

DEFAULT_CONFIG_FILE = "xrm.toml"
_SECRETS = {"secret_key", "smtp_password", "webhook_secret", "store_encryption_key"}


class Settings(BaseSettings):
    """Every setting of xrm, with its help text (``xrm config`` prints them)."""

    model_config = SettingsConfigDict(
        env_prefix="XRM_",
        extra="forbid",
        validate_default=True,
    )

    store_path: Path = Field(
        default=Path("xrm.duckdb"),
        description="Path of the embedded DuckDB store file; created on first use.",
    )
    engine: str = Field(
        default="duckdb",
        description=(
            "Batch engine: 'duckdb' (embedded default) or 'spark' / 'spark://HOST:PORT' "
            "(needs `pip install 'xrm[spark]'`)."
        ),
    )
    spark_master: str = Field(
        default="local[*]",
        description=(
            "With engine = 'spark': the Spark master ('local[*]', 'spark://HOST:7077', 'yarn') or a "
            "Spark Connect remote ('sc://HOST:15002'). A SparkSession handed in takes precedence."
        ),
    )
    batch_source: str = Field(
        default="",
        description=(
            "Where the batch pipeline on an engine reads its input tables: a folder or URI holding one "
            "dataset per table (events, order_lines, relationships), e.g. 's3a://bucket/xrm'. Empty: "
            "the store's tables (DuckDB) or the Spark catalog's tables of the same names."
        ),
    )
    batch_format: str = Field(
        default="parquet",
        description="Format of the datasets under batch_source: 'parquet', or on Spark 'delta' / 'iceberg'.",
    )
    batch_output: str = Field(
        default="",
        description=(
            "Where the batch pipeline on an engine writes its outputs, one Parquet dataset per output "
            "(e.g. 's3a://bucket/xrm-out'). Empty: outputs are returned, not written."
        ),
    )
    memory_limit: str = Field(
        default="8GB",
        description="DuckDB memory_limit; always set so large joins spill to disk instead of failing.",
    )
    threads: int = Field(default=0, ge=0, description="DuckDB worker threads; 0 = one per core.")
    temp_directory: Path | None = Field(
        default=None,
        description="Where DuckDB spills when memory_limit is reached (default: next to the store).",
    )
    store_encryption_key: SecretStr | None = Field(
        default=None,
        description=(
            "Key that encrypts the store file at rest (DuckDB AES-256-GCM: every block, the WAL, spill "
            "files and backups), at least 16 characters. Empty: a plain file. Convert an existing "
            "store with `xrm store encrypt` / `xrm store decrypt`; a lost key cannot be recovered."
        ),
    )
    store_encryption_unsafe_crypto: bool = Field(
        default=False,
        description=(
            "Let DuckDB's built-in mbedtls write the encrypted store when its httpfs extension "
            "(OpenSSL) is not installed (in DuckDB's extension folder, or by `pip install "
            "'xrm[encryption]'`); DuckDB calls that not securely encrypted. For tests only."
        ),
    )
    default_region: str = Field(
        default="DE",
        description="Region for phone numbers without a country code (ISO 3166 alpha-2).",
    )
    currency: str = Field(default="EUR", description="Currency of reported values (ISO 4217).")
    batch_rows: int = Field(
        default=100_000, ge=1_000, description="Rows per batch when loading files."
    )
    identify: dict[str, Any] = Field(
        default_factory=dict,
        description=(
            "Identity rules (an [identify] table in xrm.toml): blocked values, limits per identifier "
            "type, priorities; see docs/identify.md."
        ),
    )
    # -- interact: permission, channels, tracking --------------------------------------------
    secret_key: SecretStr | None = Field(
        default=None,
        description=(
            "Secret for signed links (double opt-in, unsubscribe, tracking pixel, click redirect); "
            "at least 32 characters. Changing it invalidates links already sent."
        ),
    )
    public_base_url: str = Field(
        default="http://localhost:8000",
        description="Base URL of `xrm serve` as customers reach it; signed links point here.",
    )
    default_timezone: str = Field(
        default="Europe/Berlin",
        description="Customer time zone for quiet hours when a customer's own is not known (IANA).",
    )
    smtp_host: str = Field(default="localhost", description="SMTP server for e-mail.")
    smtp_port: int = Field(default=587, ge=1, le=65535, description="SMTP port (587 submission).")
    smtp_starttls: bool = Field(default=True, description="Upgrade the SMTP connection with STARTTLS.")
    smtp_user: str | None = Field(default=None, description="SMTP AUTH user (none: no AUTH).")
    smtp_password: SecretStr | None = Field(default=None, description="SMTP AUTH password.")
    mail_from: str = Field(
        default="xrm <noreply@example.com>", description="From address of e-mail messages."
    )
    webhook_secret: SecretStr | None = Field(
        default=None,
        description="HMAC-SHA256 key signing webhook deliveries (header X-Xrm-Signature: t=...,v1=...).",
    )
    sms_webhook_url: str | None = Field(
        default=None, description="Webhook that sends SMS messages (your SMS gateway's adapter)."
    )
    push_webhook_url: str | None = Field(
        default=None, description="Webhook that sends push notifications."
    )
    outbox_dir: Path = Field(
        default=Path("outbox"),
        description="Where letter print files and call lists for the letter shop and call centre go.",
    )
    schedule_poll_seconds: float = Field(
        default=60.0, ge=0,
        description=(
            "How often `xrm serve` runs the scheduled campaigns that are due and merges new orders "
            "into the needs profiles (0: never; then run `xrm campaign due` and `xrm needs update` "
            "from cron)."
        ),
    )
    # -- api: the event API (`xrm serve`) ------------------------------------------------------
    write_keys: dict[str, str] = Field(
        default_factory=dict,
        description=(
            "Segment write keys the event API accepts, each naming its source: "
            '{"KEY": "webshop"} (TOML: [write_keys] KEY = "webshop"). Empty, and no key made with '
            "`xrm keys create` either: any write key is accepted and a warning is logged once."
        ),
    )
    api_rate_per_s: float = Field(
        default=200.0, gt=0,
        description=(
            "Requests per second each API key may make (token bucket; over it: 429 with Retry-After). "
            "A key made with `xrm keys create --rate` overrides it."
        ),
    )
    api_rate_burst: int = Field(
        default=400, ge=1,
        description="Requests an API key may make at once before api_rate_per_s applies (bucket size).",
    )
    api_writer_cache: int = Field(
        default=200_000, ge=1,
        description=(
            "Entries per map of the event writer's identifier cache (normalised identifiers, "
            "visitors, owners, evidence); a full map is emptied and refills. Bounds its memory: "
            "about 0.25 KB per entry."
        ),
    )
    api_decide_cache: int = Field(
        default=200_000, ge=1,
        description=(
            "Entries per map of /v1/decide's identity cache (user ids, identifiers, e-mail and phone "
            "evidence, profiles' user ids and status, strangers looked up); the least recently used "
            "are dropped first and looked up in the store again when needed. Bounds its memory: about "
            "0.19 KB per entry, six maps."
        ),
    )
    api_checkpoint_s: float = Field(
        default=60.0, ge=0,
        description=(
            "Seconds between the event writer's own checkpoints (between two group commits, when "
            "the write-ahead log holds 1 MiB or more; at 32 MiB sooner): bounds the log and the "
            "committed rows DuckDB holds in memory until one. 0: only DuckDB's own, at 128 MiB."
        ),
    )
    api_checkpoint_detour: bool = Field(
        default=True,
        description=(
            "Run the event writer's checkpoints on a thread of their own and commit the groups "
            "that come meanwhile into a landing file beside the store (a checkpoint locks every "
            "commit into the store out), moved into the store right after: no request waits for a "
            "checkpoint. Events that came during one are resolved to profiles a moment after their "
            "200, not before it; profile reads and decisions wait for them. False: requests wait."
        ),
    )
    api_index_memory_mb: float = Field(
        default=256.0, ge=0,
        description=(
            "The most memory the server lets DuckDB keep of the store's indexes (index buffers a "
            "look-up loaded are freed by nothing but a detach): when it holds more, the event "
            "writer's next checkpoint (at most one such every 30 s) detaches the store and attaches "
            "it again instead, while requests that read the store wait at its gate (a few hundred "
            "ms; ingestion goes on). 0: never (the indexes' memory then grows with the store)."
        ),
    )
    api_checkpoint_step_mib: float = Field(
        default=0.0, ge=0,
        description=(
            "Also checkpoint once the write-ahead log holds this many MiB, between two group "
            "commits while fewer than half a group's events are queued: shorter, more frequent "
            "stalls (each locks out every commit). 0: off (session 8: worse on a loaded machine, "
            "to be decided on a quiet one; see docs/api.md)."
        ),
    )

    @field_validator("engine")
    @classmethod
    def _known_engine(cls, value: str) -> str:
        if value == "duckdb" or value == "spark" or value.startswith("spark://"):
            return value
        raise ValueError(
            f"engine = {value!r} is not known; use 'duckdb', 'spark' or 'spark://HOST:PORT'"
        )

    @field_validator("store_encryption_key")
    @classmethod
    def _strong_enough_key(cls, value: SecretStr | None) -> SecretStr | None:
        if value is None or value.get_secret_value() == "":
            return None
        if len(value.get_secret_value()) < 16:
            raise ValueError(
                "store_encryption_key is shorter than 16 characters; use a long random one, e.g. "
                "python -c 'import secrets; print(secrets.token_urlsafe(32))'"
            )
        return value

    @classmethod
    def settings_customise_sources(
        cls,
        settings_cls: type[BaseSettings],
        init_settings: PydanticBaseSettingsSource,
        env_settings: PydanticBaseSettingsSource,
        dotenv_settings: PydanticBaseSettingsSource,
        file_secret_settings: PydanticBaseSettingsSource,
    ) -> tuple[PydanticBaseSettingsSource, ...]:
        toml_file = Path(os.environ.get("XRM_CONFIG", DEFAULT_CONFIG_FILE))
        return (
            init_settings,
            env_settings,
            TomlConfigSettingsSource(settings_cls, toml_file=toml_file),
        )

    @property
    def uses_spark(self) -> bool:
        return self.engine.startswith("spark")


def load_settings(**overrides: Any) -> Settings:
    """Build the settings, turning validation problems into one :class:`ConfigError` report."""
    try:
        return Settings(**{k: v for k, v in overrides.items() if v is not None})
    except ValidationError as exc:
        problems = []
        for err in exc.errors():
            field = ".".join(str(p) for p in err["loc"]) or "(settings)"
            shown = "'***'" if field in _SECRETS else repr(err.get("input"))  # never echo a secret
            problems.append(f"  {field} = {shown}: {err['msg']}")
        source = os.environ.get("XRM_CONFIG", DEFAULT_CONFIG_FILE)
        raise ConfigError(
            f"invalid settings (from arguments, XRM_* variables or {source}):\n"
            + "\n".join(problems)
            + "\nRun `xrm config` to see every setting with its help text."
        ) from None
