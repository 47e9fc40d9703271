"""Every setting in one place, read from ``AZORA_*`` environment variables.

Nothing here opens a connection: entry points build engines and clients from a
:class:`Settings` object and hand them down.
"""

from __future__ import annotations

from functools import lru_cache
from pathlib import Path
from typing import Annotated
from urllib.parse import urlsplit

from pydantic import Field, SecretStr, ValidationError, field_validator, model_validator
from pydantic_settings import BaseSettings, SettingsConfigDict

from azora.errors import ConfigurationError
from azora.types import Environment, ServiceName

#: Placeholders that let development and tests start without secrets; refused in production.
DEV_JWT_SECRET = "dev-insecure-jwt-secret-change-me"
DEV_ENCRYPTION_KEY = "dev-insecure-encryption-key-change-me"


_CACHE_SCHEMES = frozenset({"memory", "redis", "rediss", "unix"})
_EVENTS_SCHEMES = frozenset({"memory", "nats", "tls", "redis", "rediss", "unix"})


def _check_client_url(value: str, schemes: frozenset[str], expected: str) -> str:
    """``value`` if each of its comma-separated URLs has a known scheme and a usable port.

    The messages never repeat the value: it may hold a password.
    """
    for part in value.split(","):
        try:
            parts = urlsplit(part.strip())
            parts.port  # noqa: B018 - raises for a port that is not a number from 0 to 65535
        except ValueError:
            raise ValueError(f"not a URL with a usable host and port; use {expected}") from None
        if parts.scheme not in schemes:
            raise ValueError(f"unsupported scheme {parts.scheme!r}; use {expected}")
    return value


class Settings(BaseSettings):
    """The process's configuration; see the README for each variable."""

    model_config = SettingsConfigDict(env_prefix="AZORA_", extra="ignore", frozen=True)

    env: Environment = Environment.DEVELOPMENT

    # A PostgreSQL server URL; each service gets database ``<db_name_prefix>_<service>`` on it.
    database_url: str | None = None
    # Per-service overrides: a complete URL (PostgreSQL or SQLite) for one database.
    auth_database_url: str | None = None
    education_database_url: str | None = None
    mint_database_url: str | None = None
    forge_database_url: str | None = None
    sapiens_database_url: str | None = None
    nexus_database_url: str | None = None
    family_database_url: str | None = None
    notifications_database_url: str | None = None
    health_database_url: str | None = None
    db_name_prefix: Annotated[str, Field(pattern=r"^[a-z][a-z0-9_]{0,40}$")] = "azora"

    # Embedded mode: one SQLite file per service under this directory.
    data_dir: Path = Path(".azora")

    # Connection pool per database (the original design's ``connection_limit``).
    db_pool_size: Annotated[int, Field(ge=1, le=500)] = 10
    db_max_overflow: Annotated[int, Field(ge=0, le=500)] = 5
    db_pool_timeout_s: Annotated[float, Field(gt=0)] = 30.0
    db_connect_timeout_s: Annotated[float, Field(gt=0)] = 5.0
    db_statement_timeout_ms: Annotated[int, Field(ge=0)] = 30_000
    db_echo: bool = False
    # PostgreSQL: the login role the application runs as. It owns no table and has no
    # BYPASSRLS, so row-level security applies to it; migrations and other administrative
    # work use the credentials of the URLs above (the tables' owner). ``azora db setup``
    # creates the role when it is missing and sets its password when one is given.
    db_app_role: Annotated[str, Field(pattern=r"^[a-z_][a-z0-9_]{0,62}$")] = "azora_app"
    db_app_password: SecretStr | None = None

    # Cache: ``memory://`` (in-process, the embedded default) or ``redis://host:port/db``.
    cache_url: str = "memory://"
    # Event bus: ``memory://`` (in-process, the embedded default), ``nats://host:4222``
    # (JetStream) or ``redis://host:6379/0`` (Redis Streams).
    events_url: str = "memory://"
    # ``azora serve``: where the Socket.IO gateway and its HTTP routes listen.
    serve_host: str = "127.0.0.1"
    serve_port: Annotated[int, Field(ge=0, le=65_535)] = 8000
    # Origins a browser may open the gateway from ("*" for any); none by default.
    gateway_cors_origins: list[str] = []
    # Engine.IO heartbeats: the server pings every interval and drops a client that has
    # not answered within the timeout.
    gateway_ping_interval_s: Annotated[float, Field(gt=0, le=300)] = 25.0
    gateway_ping_timeout_s: Annotated[float, Field(gt=0, le=300)] = 20.0
    # How often open connections are checked again: an expired access token or a revoked
    # session ends the connection (the client refreshes its token and reconnects).
    gateway_reverify_s: Annotated[float, Field(gt=0, le=3_600)] = 30.0
    # A reconnecting client gets at most this many missed events, then a gap signal.
    gateway_catch_up_limit: Annotated[int, Field(ge=1, le=100_000)] = 1_000
    # Bytes the recent events each gateway keeps for quick catch-ups may take (their
    # encoded envelopes, estimated); the oldest go first, and are read from the history.
    gateway_recent_bytes: Annotated[int, Field(ge=1_024, le=4_294_967_296)] = 16_777_216
    # Catch-ups computed at once per gateway process, how many more may wait for their
    # turn, and how many one user may have at once; beyond that a client is told to retry
    # later (a "busy" gap).
    gateway_catch_up_concurrency: Annotated[int, Field(ge=1, le=1_000)] = 4
    gateway_catch_up_queue: Annotated[int, Field(ge=0, le=100_000)] = 200
    gateway_catch_up_per_user: Annotated[int, Field(ge=1, le=1_000)] = 2
    # How often one user may catch up (a burst, then per second; rate 0: no limit):
    # beyond, "busy" gaps until their turn comes.
    gateway_catch_up_rate_per_user: Annotated[float, Field(ge=0, le=1_000)] = 0.2
    gateway_catch_up_burst_per_user: Annotated[int, Field(ge=1, le=1_000)] = 5
    # The share of the event loop's time the catch-ups together may use (after a burst
    # of 50 ms): the rest stays with live delivery, GET /health and new connections.
    gateway_catch_up_share: Annotated[float, Field(gt=0, le=1)] = 0.1
    # Hostile clients (README, "Connection limits"). A request's target, its headers
    # (count and bytes with the request line) and a client's message (an HTTP body, a
    # websocket or Engine.IO message) are bounded as they are read: past a limit the
    # answer is 414, 431 or 413 (411 for a body of unannounced length) and it closes.
    gateway_max_request_line_bytes: Annotated[int, Field(ge=256, le=65_536)] = 8_000
    gateway_max_header_bytes: Annotated[int, Field(ge=1_024, le=1_048_576)] = 65_536
    gateway_max_headers: Annotated[int, Field(ge=8, le=1_000)] = 100
    gateway_max_message_bytes: Annotated[int, Field(ge=1_024, le=16_777_216)] = 65_536
    # A request must arrive whole this soon after its first byte (else 408); a connection
    # with no request under way (a new one too) closes after the keep-alive time.
    gateway_request_timeout_s: Annotated[float, Field(gt=0, le=300)] = 10.0
    gateway_keep_alive_s: Annotated[int, Field(ge=1, le=300)] = 5
    # Open connections: in all (0: the open-file limit minus 256; a few more are let in
    # for GET /health only), from one client address (0: no limit; behind a proxy every
    # client has the proxy's address) and Socket.IO connections per user.
    gateway_max_connections: Annotated[int, Field(ge=0)] = 0
    gateway_max_connections_per_ip: Annotated[int, Field(ge=0)] = 200
    gateway_max_connections_per_user: Annotated[int, Field(ge=1, le=10_000)] = 50
    # How often connections may open and sessions start (token buckets: a burst, then a
    # rate per second; rate 0: no limit): TCP connections per client address (past it:
    # reset at once, unread), Engine.IO handshakes per client address (past it: 429),
    # Socket.IO connects per client address and per user (refused "rate_limited"), and
    # calls (subscribe, unsubscribe, authenticate) per connection (answered
    # "rate_limited").
    gateway_connection_rate_per_ip: Annotated[float, Field(ge=0, le=100_000)] = 100.0
    gateway_connection_burst_per_ip: Annotated[int, Field(ge=1, le=100_000)] = 200
    gateway_handshake_rate_per_ip: Annotated[float, Field(ge=0, le=100_000)] = 20.0
    gateway_handshake_burst_per_ip: Annotated[int, Field(ge=1, le=100_000)] = 50
    gateway_connect_rate_per_ip: Annotated[float, Field(ge=0, le=100_000)] = 20.0
    gateway_connect_burst_per_ip: Annotated[int, Field(ge=1, le=100_000)] = 50
    gateway_call_rate_per_connection: Annotated[float, Field(ge=0, le=10_000)] = 10.0
    gateway_call_burst_per_connection: Annotated[int, Field(ge=1, le=10_000)] = 30
    gateway_connect_rate_per_user: Annotated[float, Field(ge=0, le=10_000)] = 2.0
    gateway_connect_burst_per_user: Annotated[int, Field(ge=1, le=10_000)] = 10
    # An Engine.IO session that has not connected a Socket.IO namespace by then is closed.
    gateway_connect_timeout_s: Annotated[float, Field(gt=0, le=300)] = 10.0
    # What may wait to be sent to one client (bytes, messages): past it the client is
    # cut off; and a connection whose unsent data has not moved for the send timeout.
    gateway_send_queue_bytes: Annotated[int, Field(ge=4_096, le=268_435_456)] = 1_048_576
    gateway_send_queue_messages: Annotated[int, Field(ge=16, le=1_000_000)] = 1_000
    gateway_send_timeout_s: Annotated[float, Field(gt=0, le=3_600)] = 30.0
    # The kernel's send buffer of each accepted connection (SO_SNDBUF; Linux doubles it;
    # 0: the kernel's default, which grows up to 4 MiB for a client that stops reading).
    gateway_socket_send_buffer_bytes: Annotated[int, Field(ge=0, le=67_108_864)] = 262_144
    # GET /health checks the databases at most once per this many seconds (0: on every
    # request); the requests in between get the latest results, with their age.
    gateway_health_max_age_s: Annotated[float, Field(ge=0, le=60)] = 1.0
    # A cache call slower than this counts as a failure (the read goes to the database).
    cache_timeout_ms: Annotated[int, Field(ge=1, le=60_000)] = 100
    # Entries the in-process cache keeps (least recently used go first).
    cache_max_entries: Annotated[int, Field(ge=1)] = 100_000
    # With Redis: entries of the in-process layer in front of it (0 = no such layer).
    cache_local_max_entries: Annotated[int, Field(ge=0)] = 0
    # How long the in-process layer may serve an entry: the staleness bound should an
    # invalidation message be lost.
    cache_local_ttl_ms: Annotated[int, Field(ge=1, le=60_000)] = 2_000

    jwt_secret: SecretStr | None = None
    encryption_key: SecretStr | None = None

    # -- auth (azora.auth) ------------------------------------------------------------
    # Earlier JWT secrets, comma-separated: tokens they signed still verify until they
    # expire (at most ``auth_access_token_ttl_s`` after the rotation); new tokens are
    # signed with ``AZORA_JWT_SECRET`` only. Each token names its key in the ``kid`` header.
    jwt_retired_secrets: SecretStr | None = None
    # An access token (JWT) is checked without the database, so it lives briefly.
    auth_access_token_ttl_s: Annotated[int, Field(ge=30, le=3_600)] = 900
    # A session (and its refresh token) expires this long after its last use...
    auth_session_idle_ttl_s: Annotated[int, Field(ge=300)] = 7 * 86_400
    # ...and this long after sign-in at the latest, however often it is used.
    auth_session_max_age_s: Annotated[int, Field(ge=300)] = 30 * 86_400
    auth_email_verification_ttl_s: Annotated[int, Field(ge=300)] = 2 * 86_400
    # OWASP: password reset links are short-lived.
    auth_password_reset_ttl_s: Annotated[int, Field(ge=60, le=86_400)] = 1_800
    # Progressive lockout: failures of one account (or email) before it is locked, and
    # failures from one IP address before it is blocked, both counted over the last
    # ``auth_lockout_window_s`` (an IP is shared by a whole school behind NAT, hence the
    # higher bar). The lock lasts ``auth_lockout_base_s``, doubling with each further
    # failure, at most ``auth_lockout_max_s``.
    auth_lockout_threshold: Annotated[int, Field(ge=1, le=100)] = 5
    auth_ip_lockout_threshold: Annotated[int, Field(ge=1, le=100_000)] = 100
    auth_lockout_window_s: Annotated[int, Field(ge=60)] = 3_600
    auth_lockout_base_s: Annotated[int, Field(ge=1)] = 30
    auth_lockout_max_s: Annotated[int, Field(ge=1)] = 3_600

    @field_validator("cache_url")
    @classmethod
    def _cache_url_is_usable(cls, value: str) -> str:
        return _check_client_url(value, _CACHE_SCHEMES, "memory:// or redis://host:6379/0")

    @field_validator("events_url")
    @classmethod
    def _events_url_is_usable(cls, value: str) -> str:
        return _check_client_url(
            value, _EVENTS_SCHEMES, "memory://, nats://host:4222 or redis://host:6379/0"
        )

    @model_validator(mode="after")
    def _auth_settings_are_consistent(self) -> Settings:
        if self.auth_session_max_age_s < self.auth_session_idle_ttl_s:
            raise ValueError(
                "AZORA_AUTH_SESSION_MAX_AGE_S must not be shorter than"
                " AZORA_AUTH_SESSION_IDLE_TTL_S"
            )
        if self.auth_lockout_max_s < self.auth_lockout_base_s:
            raise ValueError("AZORA_AUTH_LOCKOUT_MAX_S must not be shorter than the base")
        if self.env is Environment.PRODUCTION:
            for secret in self.jwt_retired_secret_values():
                if len(secret) < 32:
                    raise ValueError(
                        "AZORA_JWT_RETIRED_SECRETS: every retired secret must be at least"
                        " 32 characters in production"
                    )
        return self

    def jwt_retired_secret_values(self) -> tuple[str, ...]:
        """The retired JWT secrets, in the order given (empty entries dropped)."""
        if self.jwt_retired_secrets is None:
            return ()
        raw = self.jwt_retired_secrets.get_secret_value()
        return tuple(part.strip() for part in raw.split(",") if part.strip())

    # -- end of auth ----------------------------------------------------------------------
    # Password of the studio admin the development seed creates; printed once when unset.
    admin_password: SecretStr | None = None

    @model_validator(mode="after")
    def _production_needs_real_secrets(self) -> Settings:
        if self.env is Environment.PRODUCTION:
            for name, value, placeholder in (
                ("AZORA_JWT_SECRET", self.jwt_secret, DEV_JWT_SECRET),
                ("AZORA_ENCRYPTION_KEY", self.encryption_key, DEV_ENCRYPTION_KEY),
            ):
                if value is None or not value.get_secret_value().strip():
                    raise ValueError(f"{name} must be set when AZORA_ENV=production")
                if value.get_secret_value() == placeholder:
                    raise ValueError(f"{name} is the development placeholder; set a real secret")
                if len(value.get_secret_value()) < 32:
                    raise ValueError(f"{name} must be at least 32 characters in production")
        return self

    def service_url_override(self, service: ServiceName) -> str | None:
        """The complete URL configured for one service, if any."""
        value: str | None = getattr(self, f"{service.value}_database_url")
        return value

    def jwt_secret_value(self) -> str:
        """The JWT signing secret (the development placeholder outside production)."""
        return self.jwt_secret.get_secret_value() if self.jwt_secret else DEV_JWT_SECRET

    def encryption_key_value(self) -> str:
        """The at-rest encryption key (the development placeholder outside production)."""
        return self.encryption_key.get_secret_value() if self.encryption_key else DEV_ENCRYPTION_KEY


def _variable(location: tuple[int | str, ...]) -> str:
    return "AZORA_" + "_".join(str(p) for p in location).upper() if location else "settings"


def load_settings() -> Settings:
    """Read the settings from the environment.

    Raises:
        ConfigurationError: a variable is malformed, or production lacks real secrets.
    """
    try:
        return Settings()
    except ValidationError as exc:
        problems = "; ".join(
            f"{_variable(err['loc'])}: {err['msg'].removeprefix('Value error, ')}"
            for err in exc.errors()
        )
        raise ConfigurationError(
            f"invalid configuration: {problems}", hint="fix the AZORA_* environment variables"
        ) from None


@lru_cache(maxsize=1)
def get_settings() -> Settings:
    """The process-wide settings, read once on first use (never at import)."""
    return load_settings()
