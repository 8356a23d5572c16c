"""Configuration, read once from `LIAISON_*` environment variables into a frozen `Settings`.

No other module reads `os.environ`.
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any, Final
from urllib.parse import urlsplit

from auth.tokens import MIN_SECRET_BYTES
from notify.email import parse_smtp_url

DEMO_SECRET = "liaison-demo-secret--never-use-outside-demo-mode"
DEFAULT_STORE_URL = "sqlite:///liaison.db"
LOOPBACK_HOSTS: Final = ("127.0.0.1", "localhost", "::1")


class ConfigError(Exception):
    """A setting is missing or wrong; the message says what to do."""


@dataclass(frozen=True, slots=True)
class Secret:
    """A secret that never shows its value in logs or reprs."""

    value: str = field(repr=False)

    def __repr__(self) -> str:
        return "Secret('**********')"

    def bytes(self) -> bytes:
        return self.value.encode()


@dataclass(frozen=True, slots=True)
class Limits:
    max_frame_bytes: int = 64 * 1024
    max_text: int = 10_000
    max_title: int = 200
    max_attachments: int = 10
    commands_per_second: float = 100.0
    command_burst: int = 200
    connect_timeout: float = 10.0
    bad_frames: int = 10
    recovery_cap: int = 500
    outbox_bytes: int = 1024 * 1024
    since_channels: int = 200
    socket_sndbuf: int = 64 * 1024  # kernel send buffer of a WebSocket (Linux reserves twice this)
    reply_bytes: int = 512 * 1024  # the messages of one recovery or history reply, at most
    recent_cache_bytes: int = 64 * 1024 * 1024  # recent messages kept in memory for recoveries (LRU by channel)
    # per user (or API key, or address) across every gateway process: `channels.limits`
    user_connections: int = 10
    user_commands_per_second: float | None = None  # None: commands_per_second
    user_command_burst: int | None = None  # None: command_burst
    publishes_per_second: float | None = None  # None: commands_per_second / 10 (10)
    publish_burst: int | None = None  # None: command_burst * 3 / 20 (30)
    http_per_second: float = 20.0  # per user token, or per client address without credentials
    http_burst: int = 60
    api_key_per_second: float = 100.0
    api_key_burst: int = 300
    rate_limit_block: float = 60.0  # seconds a user closed with 4429 is refused at connect


@dataclass(frozen=True, slots=True)
class SignInSettings:
    """Sign-in by e-mailed codes, device sessions, and the school's identity provider (issue 11)."""

    smtp_url: Secret | None = None  # None: no e-mail is sent (--demo: the in-memory outbox)
    smtp_from: str = "liaison@localhost"
    public_url: str = "http://127.0.0.1:8000"  # base of the links in e-mails
    access_ttl: int = 900  # seconds an access token lives
    code_ttl: float = 600.0  # seconds a sign-in code lives
    refresh_grace: float = 10.0  # seconds a just-replaced refresh credential is forgiven (two tabs)
    oidc_issuer: str | None = None
    oidc_audience: str | None = None
    oidc_jwks_url: str | None = None  # None: from the issuer's /.well-known/openid-configuration
    oidc_claim: str = "email"
    oidc_refetch: float = 30.0  # seconds between two fetches of the keys for an unknown `kid`

    @property
    def oidc(self) -> bool:
        return self.oidc_issuer is not None


@dataclass(frozen=True, slots=True)
class PushSettings:
    """Web Push, the webhook provider and the job workers (issue 12)."""

    vapid_private_key: Secret | None = None  # None: generated once and kept in the store
    vapid_subject: str = "mailto:liaison@localhost"  # who push services may contact (RFC 8292 `sub`)
    allowed_hosts: frozenset[str] = frozenset()  # push endpoints exempt from the public-address rules
    webhook_url: str | None = None  # notifications POSTed there too (an operator's FCM/APNs/SMS gateway)
    webhook_secret: Secret | None = None  # HMAC-SHA256 key of the webhook's X-Liaison-Signature
    workers_in_serve: bool = True  # run the job workers inside `liaison serve`
    send_timeout: float = 10.0  # seconds per request to a push service or the webhook
    job_lease: float = 60.0  # seconds a claimed job is a worker's before another may take it over


@dataclass(frozen=True, slots=True)
class Settings:
    jwt_secret: Secret
    store_url: str = DEFAULT_STORE_URL
    redis_url: str | None = None
    redis_prefix: str = "liaison:"
    allowed_origins: tuple[str, ...] = ()
    api_key: Secret | None = None
    demo: bool = False
    ping_interval: float = 20.0
    ping_timeout: float = 20.0
    token_ttl: int = 7 * 24 * 3600
    gap_fill_delay: float = 0.5
    directory_poll: float = 2.0
    catch_up_period: float = 2.0
    presence_period: float = 5.0
    log_level: str = "info"
    loop: str = "auto"  # the event loop: auto (uvloop when installed: a dependency), asyncio or uvloop (issue 16)
    max_connections: int = 15_000  # per process; beyond: 503 or close 1013 (lowered to fit RLIMIT_NOFILE)
    header_timeout: float = 10.0  # seconds to send a request's head, and to finish the WebSocket handshake
    keep_alive_timeout: int = 5  # seconds an idle HTTP keep-alive connection is kept
    http_write_timeout: float = 30.0  # seconds an HTTP response may stay paused by a client not reading
    digest_period: float = 1800.0  # at most one digest e-mail per person per period, seconds (issue 12)
    digest_poll: float = 60.0  # seconds between two rounds of the digest sender
    schedule_poll: float = 2.0  # seconds between two looks for scheduled posts that are due
    audit_retention_days: int = 365  # days the audit log keeps an entry (issue 15)
    upload_image_bytes: int = 20 * 1024 * 1024  # largest uploaded photo (issue 13)
    upload_pdf_bytes: int = 50 * 1024 * 1024  # largest uploaded PDF
    uploads_per_minute: int = 30  # uploads per user and minute, over every gateway (the per-user limiter)
    upload_workers: int = 2  # processes re-encoding photos, off the event loop
    limits: Limits = Limits()
    signin: SignInSettings = SignInSettings()
    push: PushSettings = PushSettings()


_LIMIT_VARS: dict[str, tuple[str, type]] = {
    "LIAISON_MAX_FRAME_BYTES": ("max_frame_bytes", int),
    "LIAISON_MAX_TEXT": ("max_text", int),
    "LIAISON_MAX_ATTACHMENTS": ("max_attachments", int),
    "LIAISON_COMMANDS_PER_SECOND": ("commands_per_second", float),
    "LIAISON_COMMAND_BURST": ("command_burst", int),
    "LIAISON_CONNECT_TIMEOUT": ("connect_timeout", float),
    "LIAISON_BAD_FRAMES": ("bad_frames", int),
    "LIAISON_RECOVERY_CAP": ("recovery_cap", int),
    "LIAISON_OUTBOX_BYTES": ("outbox_bytes", int),
    "LIAISON_SOCKET_SNDBUF": ("socket_sndbuf", int),
    "LIAISON_USER_CONNECTIONS": ("user_connections", int),
    "LIAISON_USER_COMMANDS_PER_SECOND": ("user_commands_per_second", float),
    "LIAISON_USER_COMMAND_BURST": ("user_command_burst", int),
    "LIAISON_PUBLISHES_PER_SECOND": ("publishes_per_second", float),
    "LIAISON_PUBLISH_BURST": ("publish_burst", int),
    "LIAISON_HTTP_PER_SECOND": ("http_per_second", float),
    "LIAISON_HTTP_BURST": ("http_burst", int),
    "LIAISON_API_KEY_PER_SECOND": ("api_key_per_second", float),
    "LIAISON_API_KEY_BURST": ("api_key_burst", int),
    "LIAISON_RATE_LIMIT_BLOCK": ("rate_limit_block", float),
    "LIAISON_REPLY_BYTES": ("reply_bytes", int),
    "LIAISON_RECENT_CACHE_BYTES": ("recent_cache_bytes", int),
}

_SETTING_VARS: dict[str, tuple[str, type]] = {
    "LIAISON_PING_INTERVAL": ("ping_interval", float),
    "LIAISON_PING_TIMEOUT": ("ping_timeout", float),
    "LIAISON_TOKEN_TTL": ("token_ttl", int),
    "LIAISON_GAP_FILL_DELAY": ("gap_fill_delay", float),
    "LIAISON_DIRECTORY_POLL": ("directory_poll", float),
    "LIAISON_CATCH_UP_PERIOD": ("catch_up_period", float),
    "LIAISON_PRESENCE_PERIOD": ("presence_period", float),
    "LIAISON_MAX_CONNECTIONS": ("max_connections", int),
    "LIAISON_HEADER_TIMEOUT": ("header_timeout", float),
    "LIAISON_KEEP_ALIVE_TIMEOUT": ("keep_alive_timeout", int),
    "LIAISON_HTTP_WRITE_TIMEOUT": ("http_write_timeout", float),
    "LIAISON_DIGEST_PERIOD": ("digest_period", float),
    "LIAISON_DIGEST_POLL": ("digest_poll", float),
    "LIAISON_SCHEDULE_POLL": ("schedule_poll", float),
    "LIAISON_AUDIT_RETENTION_DAYS": ("audit_retention_days", int),
    "LIAISON_UPLOAD_IMAGE_BYTES": ("upload_image_bytes", int),
    "LIAISON_UPLOAD_PDF_BYTES": ("upload_pdf_bytes", int),
    "LIAISON_UPLOADS_PER_MINUTE": ("uploads_per_minute", int),
    "LIAISON_UPLOAD_WORKERS": ("upload_workers", int),
}

_SIGNIN_VARS: dict[str, tuple[str, type]] = {
    "LIAISON_ACCESS_TTL": ("access_ttl", int),
    "LIAISON_CODE_TTL": ("code_ttl", float),
    "LIAISON_REFRESH_GRACE": ("refresh_grace", float),
    "LIAISON_OIDC_REFETCH": ("oidc_refetch", float),
}


def _number(env: Mapping[str, str], name: str, kind: type) -> int | float | None:
    raw = env.get(name)
    if raw is None or raw == "":
        return None
    try:
        value = kind(raw)
    except ValueError:
        raise ConfigError(f"{name} must be a {kind.__name__}, got {raw!r}") from None
    if not math.isfinite(value) or value <= 0:
        raise ConfigError(f"{name} must be positive, got {raw!r}")
    return value  # type: ignore[no-any-return]


def _secret(env: Mapping[str, str], demo: bool) -> Secret:
    raw = env.get("LIAISON_JWT_SECRET", "")
    if demo:
        if raw:
            raise ConfigError(
                "--demo signs tokens with the public demo secret, and LIAISON_JWT_SECRET is set: "
                "a demo must never run with (or mint tokens for) a production secret. Unset "
                "LIAISON_JWT_SECRET to try the demo, or run without --demo."
            )
        return Secret(DEMO_SECRET)
    if not raw:
        raise ConfigError(
            "LIAISON_JWT_SECRET is not set. Set it to a random secret of at least "
            f"{MIN_SECRET_BYTES} bytes (e.g. `export LIAISON_JWT_SECRET=$(openssl rand -hex 32)`), "
            "or run with --demo to try Liaison with the demo school."
        )
    if len(raw.encode()) < MIN_SECRET_BYTES:
        raise ConfigError(
            f"LIAISON_JWT_SECRET is too weak: it has {len(raw.encode())} bytes, it needs at least "
            f"{MIN_SECRET_BYTES} (e.g. `openssl rand -hex 32`)."
        )
    return Secret(raw)


def _api_key(env: Mapping[str, str]) -> Secret | None:
    raw = env.get("LIAISON_API_KEY", "")
    if not raw:
        return None
    if len(raw) < 24:
        raise ConfigError("LIAISON_API_KEY is too short: use at least 24 random characters.")
    return Secret(raw)


LOOPS = ("auto", "asyncio", "uvloop")


def _loop(env: Mapping[str, str]) -> str:
    raw = env.get("LIAISON_LOOP", "auto").strip().lower() or "auto"
    if raw not in LOOPS:
        raise ConfigError(f"LIAISON_LOOP must be one of {', '.join(LOOPS)}, got {raw!r}")
    if raw == "uvloop":
        try:
            import uvloop  # noqa: F401
        except ImportError:
            raise ConfigError("LIAISON_LOOP=uvloop but uvloop is not installed: pip install uvloop, "
                              "or LIAISON_LOOP=asyncio") from None
    return raw


def _redis_prefix(env: Mapping[str, str]) -> str:
    raw = env.get("LIAISON_REDIS_PREFIX", "liaison:")
    if not raw or len(raw) > 64 or not all(c.isalnum() or c in ":-_." for c in raw):
        raise ConfigError("LIAISON_REDIS_PREFIX must be 1 to 64 letters, digits or : - _ . (e.g. 'staging:')")
    return raw


def _http_url(env: Mapping[str, str], name: str) -> str | None:
    """An http(s) URL; plain http only to the loopback (a key set or a provider on this host)."""
    raw = env.get(name, "").strip()
    if not raw:
        return None
    parts = urlsplit(raw)
    if parts.scheme not in ("http", "https") or not parts.hostname:
        raise ConfigError(f"{name} must be an https:// URL, got {raw!r}")
    if parts.scheme == "http" and parts.hostname not in LOOPBACK_HOSTS and name != "LIAISON_PUBLIC_URL":
        raise ConfigError(f"{name} must use https:// (plain http only to 127.0.0.1 or localhost)")
    return raw.rstrip("/")


def _signin(env: Mapping[str, str]) -> SignInSettings:
    values: dict[str, Any] = {}
    for var, (attr, kind) in _SIGNIN_VARS.items():
        value = _number(env, var, kind)
        if value is not None:
            values[attr] = value
    smtp = env.get("LIAISON_SMTP_URL", "").strip()
    if smtp:
        try:
            parse_smtp_url(smtp)
        except ValueError as exc:
            raise ConfigError(f"LIAISON_SMTP_URL: {exc}") from None
        values["smtp_url"] = Secret(smtp)
    sender = env.get("LIAISON_SMTP_FROM", "").strip()
    if sender:
        if "@" not in sender or any(c in sender for c in "\r\n"):
            raise ConfigError("LIAISON_SMTP_FROM must be one e-mail address (e.g. liaison@ecole.fr)")
        values["smtp_from"] = sender
    public = _http_url(env, "LIAISON_PUBLIC_URL")
    if public:
        values["public_url"] = public
    issuer = _http_url(env, "LIAISON_OIDC_ISSUER")
    audience = env.get("LIAISON_OIDC_AUDIENCE", "").strip() or None
    if (issuer is None) != (audience is None):
        raise ConfigError("set LIAISON_OIDC_ISSUER and LIAISON_OIDC_AUDIENCE together (the provider's "
                          "issuer URL and the client id it gave Liaison), or neither")
    claim = env.get("LIAISON_OIDC_CLAIM", "").strip()
    if claim:
        values["oidc_claim"] = claim
    return SignInSettings(oidc_issuer=issuer, oidc_audience=audience,
                          oidc_jwks_url=_http_url(env, "LIAISON_OIDC_JWKS_URL"), **values)


def _push(env: Mapping[str, str]) -> PushSettings:
    values: dict[str, Any] = {}
    key = env.get("LIAISON_VAPID_PRIVATE_KEY", "").strip()
    if key:
        values["vapid_private_key"] = Secret(key)
    subject = env.get("LIAISON_VAPID_SUBJECT", "").strip()
    if subject:
        if not subject.startswith(("mailto:", "https://")):
            raise ConfigError("LIAISON_VAPID_SUBJECT must be a mailto: address or an https:// URL "
                              "(e.g. mailto:informatique@ecole.fr)")
        values["vapid_subject"] = subject
    hosts = env.get("LIAISON_PUSH_ALLOWED_HOSTS", "")
    values["allowed_hosts"] = frozenset(h.strip().lower().strip("[]") for h in hosts.split(",") if h.strip())
    hook = _http_url(env, "LIAISON_WEBHOOK_URL")
    secret = env.get("LIAISON_WEBHOOK_SECRET", "")
    if hook is not None:
        if len(secret.encode()) < 32:
            raise ConfigError("LIAISON_WEBHOOK_URL needs LIAISON_WEBHOOK_SECRET, at least 32 bytes "
                              "(`openssl rand -hex 32`), to sign what is sent there")
        values["webhook_url"] = hook
        values["webhook_secret"] = Secret(secret)
    in_serve = env.get("LIAISON_WORKERS_IN_SERVE", "1").strip().lower()
    if in_serve not in ("0", "1", "true", "false", "yes", "no"):
        raise ConfigError("LIAISON_WORKERS_IN_SERVE must be 1 or 0")
    values["workers_in_serve"] = in_serve in ("1", "true", "yes")
    timeout = _number(env, "LIAISON_PUSH_TIMEOUT", float)
    if timeout is not None:
        values["send_timeout"] = timeout
    lease = _number(env, "LIAISON_JOB_LEASE", float)
    if lease is not None:
        if lease <= values.get("send_timeout", 10.0):
            raise ConfigError("LIAISON_JOB_LEASE must be longer than LIAISON_PUSH_TIMEOUT (a job's send must "
                              "end before another worker may take the job over)")
        values["job_lease"] = lease
    return PushSettings(**values)


def store_url(env: Mapping[str, str]) -> str:
    """The store's URL alone, for the offline commands (import, seed) that need no secret."""
    return env.get("LIAISON_STORE_URL") or DEFAULT_STORE_URL


def load_settings(env: Mapping[str, str], *, demo: bool = False) -> Settings:
    """Build the settings from the environment; raise `ConfigError` with a fix to apply."""
    limits: dict[str, Any] = {}
    for var, (attr, kind) in _LIMIT_VARS.items():
        value = _number(env, var, kind)
        if value is not None:
            limits[attr] = value
    settings: dict[str, Any] = {}
    for var, (attr, kind) in _SETTING_VARS.items():
        value = _number(env, var, kind)
        if value is not None:
            settings[attr] = value
    origins = tuple(o.strip().rstrip("/") for o in env.get("LIAISON_ALLOWED_ORIGINS", "").split(",") if o.strip())
    return Settings(
        jwt_secret=_secret(env, demo),
        store_url=store_url(env),
        redis_url=env.get("LIAISON_REDIS_URL") or None,
        redis_prefix=_redis_prefix(env),
        allowed_origins=origins,
        api_key=_api_key(env),
        demo=demo,
        log_level=env.get("LIAISON_LOG_LEVEL", "info").lower(),
        loop=_loop(env),
        limits=Limits(**limits),
        signin=_signin(env),
        push=_push(env),
        **settings,
    )
