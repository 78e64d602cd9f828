"""Settings from the environment and the services file, checked before anything starts."""

from __future__ import annotations

import os
import re
import tomllib
from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import timedelta
from pathlib import Path
from typing import Any

from bot.domain.durations import parse_duration
from bot.domain.service import (
    DEFAULT_NAR_REASONS,
    DEFAULT_PROFILES,
    DEFAULT_SCOPES,
    SCOPES,
    AcwSettings,
    ApiKey,
    Catalog,
    Codes,
    ContextSettings,
    Distribution,
    DistributionMode,
    ExternalSettings,
    InteractSettings,
    Modality,
    Service,
)
from bot.webhooks.settings import parse_web_requests

DEMO_SERVICES = Path(__file__).resolve().parent / "demo_services.toml"

# Every environment variable the app reads, with its default and meaning. The README's
# configuration reference and the Bicep app settings are checked against this list.
ENV: dict[str, tuple[str, str]] = {
    "MicrosoftAppId": ("", "Bot app (client) id; empty = local mode, inbound auth off"),
    "MicrosoftAppPassword": ("", "Client secret of the bot app registration"),
    "MicrosoftAppCertificate": ("", "Certificate of the bot app registration instead of a "
                                "secret: PEM (key and certificate) or base64 PKCS#12, as a "
                                "Key Vault certificate reference gives it"),
    "MicrosoftAppType": ("SingleTenant", "MultiTenant, SingleTenant or UserAssignedMSI (then "
                         "MicrosoftAppId is the identity's client id, and tokens come from "
                         "the managed-identity endpoint)"),
    "MicrosoftAppTenantId": ("", "Entra tenant id of the bot app: required unless "
                                               "MicrosoftAppType=MultiTenant (only that tenant "
                                               "gets in); Graph needs it"),
    "PORT": ("3978", "HTTP port"),
    "SWITCHBOARD_DB": ("data/switchboard.db", "SQLite database file"),
    "SWITCHBOARD_SERVICES": ("", "Services file (TOML); default: the demo file in the repo"),
    "SWITCHBOARD_LOG_LEVEL": ("INFO", "DEBUG, INFO, WARNING or ERROR; logs are JSON lines"),
    "SWITCHBOARD_STORE": ("sqlite", "sqlite or cosmos"),
    "COSMOS_ENDPOINT": ("", "Cosmos DB account endpoint (with SWITCHBOARD_STORE=cosmos)"),
    "COSMOS_KEY": ("", "Cosmos DB key; empty = managed identity"),
    "COSMOS_DATABASE": ("switchboard", "Cosmos DB database name"),
    "SWITCHBOARD_GRAPH_URL": ("https://graph.microsoft.com/v1.0", "Microsoft Graph base URL"),
    "SWITCHBOARD_AUTHORITY": ("https://login.microsoftonline.com", "Entra authority host"),
    "SWITCHBOARD_PUBLIC_HOST": ("", "Public host name of the bot (links, manifest)"),
    "SWITCHBOARD_TEAMS_APP_ID": ("", "Teams catalog app id to install into chats (optional)"),
    "SWITCHBOARD_SMTP_PORT": ("", "Inbound SMTP port for email tasks; empty: 2525 in local "
                              "mode, off otherwise; 0 = off"),
    "SWITCHBOARD_SMTP_RELAY": ("", "SMTP relay for agents' email replies, host:port (port 25 "
                               "if left out); empty = replies off"),
    "SWITCHBOARD_LOCAL_MODE": ("", "Without MicrosoftAppId: empty = local mode on loopback "
                               "only; 1 = local mode on every interface; 0 = refuse to start"),
    "SWITCHBOARD_HOST": ("", "Address to listen on; empty: 127.0.0.1 in local mode (unless "
                         "SWITCHBOARD_LOCAL_MODE=1), every interface otherwise"),
    "SWITCHBOARD_TRUSTED_PROXIES": ("0", "Reverse proxies in front of the app whose "
                                    "X-Forwarded-For entries are trusted (the Azure ingress: 1)"),
    "SWITCHBOARD_SERVICE_URL_HOSTS": ("", "Bot Connector hosts to call besides Teams' own, "
                                      "comma-separated (a leading dot: a domain and its "
                                      "subdomains)"),
    # Read by bot/observability/telemetry.py (the OTEL_* variables there are OpenTelemetry's).
    "APPLICATIONINSIGHTS_CONNECTION_STRING": ("", "Application Insights connection string: "
                                              "traces and metrics go there; empty = not"),
}
ENV_NAMES: tuple[str, ...] = tuple(ENV)

_SLUG = re.compile(r"^[a-z0-9][a-z0-9-]{0,62}$")
_LOG_LEVELS = ("DEBUG", "INFO", "WARNING", "ERROR")
_APP_TYPES = ("MultiTenant", "SingleTenant", "UserAssignedMSI")
MIN_RONA_RESET = timedelta(seconds=10)
LOCAL_SMTP_PORT = 2525
_SHA256 = re.compile(r"^[0-9a-f]{64}$")
MIN_IDENTITY_SECRET = 32


class ConfigError(Exception):
    """A setting is wrong: the message names the file or variable, the key and the problem."""


@dataclass(frozen=True)
class Settings:
    app_id: str = ""
    app_password: str = ""
    app_certificate: str = ""  # PEM or base64 PKCS#12 (checked by load_settings)
    app_type: str = "SingleTenant"
    identity_endpoint: str = ""  # IDENTITY_ENDPOINT / IDENTITY_HEADER, for UserAssignedMSI
    identity_header: str = ""
    tenant_id: str = ""
    port: int = 3978
    db_path: str = "data/switchboard.db"
    services_path: Path = DEMO_SERVICES
    log_level: str = "INFO"
    store: str = "sqlite"
    cosmos_endpoint: str = ""
    cosmos_key: str = ""
    cosmos_database: str = "switchboard"
    graph_url: str = "https://graph.microsoft.com/v1.0"
    authority: str = "https://login.microsoftonline.com"
    public_host: str = ""
    teams_app_id: str = ""
    smtp_port: int = 0  # 0: no inbound SMTP (load_settings applies the local-mode default)
    smtp_relay: str = ""  # "host:port" of the relay for replies; empty: replies off
    host: str = "127.0.0.1"  # the address to listen on (python -m bot)
    trusted_proxies: int = 0  # X-Forwarded-For entries set by proxies we trust, from the right
    service_url_hosts: tuple[str, ...] = ()  # Bot Connector hosts besides Teams' own
    catalog: Catalog = field(default_factory=lambda: Catalog(services={}))

    @property
    def local_mode(self) -> bool:
        return not self.app_id

    @property
    def managed_identity(self) -> bool:
        return self.app_type == "UserAssignedMSI"

    @property
    def single_tenant(self) -> bool:
        """The bot lives in one tenant (SingleTenant, or its managed identity's): only that
        tenant's tokens and activities get in, and its tokens come from that tenant."""
        return self.app_type != "MultiTenant"

    @property
    def has_credential(self) -> bool:
        """The bot can get tokens of its own (outbound calls carry them)."""
        if self.managed_identity:
            return bool(self.app_id and self.identity_endpoint and self.identity_header)
        return bool(self.app_id and (self.app_password or self.app_certificate))

    @property
    def graph_enabled(self) -> bool:
        return bool(self.has_credential and self.tenant_id)


def _credentials(env: Mapping[str, str], app_id: str, app_type: str, password: str,
                 certificate: str) -> dict[str, str]:
    """The bot's one credential: a secret, a certificate, or the managed identity."""
    endpoint = env.get("IDENTITY_ENDPOINT", "").strip()
    header = env.get("IDENTITY_HEADER", "").strip()
    if app_type == "UserAssignedMSI":
        if password or certificate:
            raise ConfigError("environment MicrosoftAppPassword / MicrosoftAppCertificate: a "
                              "managed identity (MicrosoftAppType=UserAssignedMSI) has neither")
        if app_id and not (endpoint and header):
            raise ConfigError("environment IDENTITY_ENDPOINT: MicrosoftAppType=UserAssignedMSI "
                              "needs the managed-identity endpoint (Azure Container Apps sets "
                              "IDENTITY_ENDPOINT and IDENTITY_HEADER when the app has the "
                              "identity)")
        return {"identity_endpoint": endpoint, "identity_header": header}
    if password and certificate:
        raise ConfigError("environment MicrosoftAppCertificate: set it or MicrosoftAppPassword, "
                          "not both")
    if certificate:
        from bot.teams.certificates import CertificateUnreadable, load_certificate
        try:
            load_certificate(certificate)
        except CertificateUnreadable as exc:
            raise ConfigError(f"environment MicrosoftAppCertificate: {exc}") from None
    return {"app_password": password, "app_certificate": certificate}


def load_settings(environ: Mapping[str, str] | None = None) -> Settings:
    env = os.environ if environ is None else environ

    def get(name: str) -> str:
        return env.get(name, ENV[name][0]).strip()

    port_text = get("PORT")
    if not port_text.isdigit() or not 0 < int(port_text) < 65536:
        raise ConfigError(f"environment PORT: {port_text!r} is not a port number (1-65535)")
    log_level = get("SWITCHBOARD_LOG_LEVEL").upper()
    if log_level not in _LOG_LEVELS:
        raise ConfigError(f"environment SWITCHBOARD_LOG_LEVEL: {log_level!r} is not one of "
                          f"{', '.join(_LOG_LEVELS)}")
    app_type = get("MicrosoftAppType") or "SingleTenant"
    if app_type not in _APP_TYPES:
        raise ConfigError(f"environment MicrosoftAppType: {app_type!r} is not one of "
                          f"{', '.join(_APP_TYPES)}")
    store = get("SWITCHBOARD_STORE").lower()
    if store not in ("sqlite", "cosmos"):
        raise ConfigError(f"environment SWITCHBOARD_STORE: {store!r} is not sqlite or cosmos")
    if store == "cosmos" and not get("COSMOS_ENDPOINT"):
        raise ConfigError("environment COSMOS_ENDPOINT: required when SWITCHBOARD_STORE=cosmos")
    services_path = Path(get("SWITCHBOARD_SERVICES") or DEMO_SERVICES)
    smtp_port_text = get("SWITCHBOARD_SMTP_PORT")
    if not smtp_port_text:
        smtp_port = 0 if get("MicrosoftAppId") else LOCAL_SMTP_PORT
    elif smtp_port_text.isdigit() and int(smtp_port_text) < 65536:
        smtp_port = int(smtp_port_text)
    else:
        raise ConfigError(f"environment SWITCHBOARD_SMTP_PORT: {smtp_port_text!r} is not a port "
                          "number (1-65535, or 0 for off)")
    smtp_relay = get("SWITCHBOARD_SMTP_RELAY")
    if smtp_relay:
        parse_relay(smtp_relay)
    app_id = get("MicrosoftAppId")
    local = get("SWITCHBOARD_LOCAL_MODE")
    if local not in ("", "0", "1"):
        raise ConfigError(f"environment SWITCHBOARD_LOCAL_MODE: {local!r} is not empty, 0 or 1")
    if not app_id and local == "0":
        raise ConfigError("environment MicrosoftAppId: empty, and SWITCHBOARD_LOCAL_MODE=0 "
                          "refuses local mode (no inbound authentication): set MicrosoftAppId, "
                          "or SWITCHBOARD_LOCAL_MODE=1 to run without it on purpose")
    if app_id and not get("SWITCHBOARD_PUBLIC_HOST"):
        raise ConfigError("environment SWITCHBOARD_PUBLIC_HOST: required with MicrosoftAppId "
                          "(the website chat's own origin, links, the app package)")
    if app_id and app_type != "MultiTenant" and not get("MicrosoftAppTenantId"):
        raise ConfigError(f"environment MicrosoftAppTenantId: required with MicrosoftAppType="
                          f"{app_type} (a single-tenant bot admits only its tenant's activities "
                          "and takes its tokens there; MultiTenant for a bot of many tenants)")
    credentials = _credentials(env, app_id, app_type, get("MicrosoftAppPassword"),
                               get("MicrosoftAppCertificate"))
    host = get("SWITCHBOARD_HOST") or ("0.0.0.0" if app_id or local == "1" else "127.0.0.1")
    proxies = get("SWITCHBOARD_TRUSTED_PROXIES") or "0"
    if not proxies.isdigit() or int(proxies) > 10:
        raise ConfigError(f"environment SWITCHBOARD_TRUSTED_PROXIES: {proxies!r} is not a number "
                          "of proxies (0-10)")
    hosts = tuple(h.strip().lower() for h in get("SWITCHBOARD_SERVICE_URL_HOSTS").split(",")
                  if h.strip())
    return Settings(
        app_id=app_id,
        **credentials,
        app_type=app_type,
        tenant_id=get("MicrosoftAppTenantId"),
        port=int(port_text),
        db_path=get("SWITCHBOARD_DB"),
        services_path=services_path,
        log_level=log_level,
        store=store,
        cosmos_endpoint=get("COSMOS_ENDPOINT"),
        cosmos_key=get("COSMOS_KEY"),
        cosmos_database=get("COSMOS_DATABASE"),
        graph_url=get("SWITCHBOARD_GRAPH_URL").rstrip("/"),
        authority=get("SWITCHBOARD_AUTHORITY").rstrip("/"),
        public_host=get("SWITCHBOARD_PUBLIC_HOST"),
        teams_app_id=get("SWITCHBOARD_TEAMS_APP_ID"),
        smtp_port=smtp_port,
        smtp_relay=smtp_relay,
        host=host,
        trusted_proxies=int(proxies),
        service_url_hosts=hosts,
        catalog=load_catalog(services_path, env),
    )


def parse_relay(text: str) -> tuple[str, int]:
    """The relay as (host, port) from "host:port", "host" (port 25) or "[v6 address]:port"."""
    host, port_text = text.strip(), "25"
    if host.startswith("["):
        inner, bracket, rest = host[1:].partition("]")
        if not bracket or (rest and not rest.startswith(":")):
            host = ""
        else:
            host, port_text = inner, rest[1:] or "25"
    elif host.count(":") == 1:
        host, port_text = host.split(":")
    if not host or any(c.isspace() or c in "/@" for c in host) or not port_text.isdigit() \
            or not 0 < int(port_text) < 65536:
        raise ConfigError(f"environment SWITCHBOARD_SMTP_RELAY: {text!r} is not host:port, "
                          "e.g. \"smtp.example.com:25\"")
    return host, int(port_text)


def load_catalog(path: Path, environ: Mapping[str, str] | None = None) -> Catalog:
    """The services file; `{env.NAME}` in web-request secrets and headers from `environ`
    (default: the process environment)."""
    try:
        text = path.read_text(encoding="utf-8")
    except OSError as exc:
        raise ConfigError(f"{path}: cannot read the services file ({exc.strerror})") from exc
    try:
        data = tomllib.loads(text)
    except tomllib.TOMLDecodeError as exc:
        raise ConfigError(f"{path}: not valid TOML ({exc})") from exc
    return parse_catalog(data, str(path), environ)


class _Reader:
    """Reads one table of the services file, naming the file and key in every error."""

    def __init__(self, data: Mapping[str, Any], source: str, where: str,
                 environ: Mapping[str, str] | None = None) -> None:
        self.data = data
        self.source = source
        self.where = where
        self.environ: Mapping[str, str] = os.environ if environ is None else environ

    def fail(self, key: str, problem: str) -> ConfigError:
        return ConfigError(f"{self.source}: {self.where}.{key}: {problem}")

    def table(self, key: str) -> _Reader:
        value = self.data.get(key, {})
        if not isinstance(value, dict):
            raise self.fail(key, "must be a table")
        return _Reader(value, self.source, f"{self.where}.{key}", self.environ)

    def text(self, key: str, default: str | None = None) -> str:
        value = self.data.get(key, default)
        if value is None:
            raise self.fail(key, "is required")
        if not isinstance(value, str):
            raise self.fail(key, f"must be a string, got {value!r}")
        return value

    def flag(self, key: str, default: bool) -> bool:
        value = self.data.get(key, default)
        if not isinstance(value, bool):
            raise self.fail(key, f"must be true or false, got {value!r}")
        return value

    def number(self, key: str, default: int, minimum: int | None = None) -> int:
        value = self.data.get(key, default)
        if not isinstance(value, int) or isinstance(value, bool):
            raise self.fail(key, f"must be a whole number, got {value!r}")
        if minimum is not None and value < minimum:
            raise self.fail(key, f"must be at least {minimum}, got {value}")
        return value

    def strings(self, key: str, default: tuple[str, ...] = ()) -> tuple[str, ...]:
        value = self.data.get(key, list(default))
        if not isinstance(value, list) or not all(isinstance(v, str) for v in value):
            raise self.fail(key, "must be a list of strings")
        return tuple(value)

    def duration(self, key: str, default: timedelta,
                 minimum: timedelta | None = None) -> timedelta:
        raw = self.data.get(key)
        if raw is None:
            return default
        try:
            value = parse_duration(raw)
        except ValueError as exc:
            raise self.fail(key, str(exc)) from None
        if minimum is not None and value < minimum:
            raise self.fail(key, f"must be at least {int(minimum.total_seconds())}s, got {raw!r}")
        return value


def parse_catalog(data: Mapping[str, Any], source: str,
                  environ: Mapping[str, str] | None = None) -> Catalog:
    raw_services = data.get("service", [])
    if not isinstance(raw_services, list) or not raw_services:
        raise ConfigError(f"{source}: service: declare at least one [[service]] table")
    services: dict[str, Service] = {}
    emails: dict[str, str] = {}
    for index, raw in enumerate(raw_services):
        if not isinstance(raw, dict):
            raise ConfigError(f"{source}: service[{index}]: must be a table")
        service = _parse_service(_Reader(raw, source, f"service[{index}]", environ))
        if service.id in services:
            raise ConfigError(f"{source}: service[{index}].id: duplicate id {service.id!r}")
        if service.email:
            owner = emails.get(service.email.lower())
            if owner:
                raise ConfigError(f"{source}: service[{index}].email: {service.email!r} is "
                                  f"already the address of service {owner!r}")
            emails[service.email.lower()] = service.id
        services[service.id] = service
    top = _Reader(data, source, "settings")
    settings = top.table("settings")
    profiles = _parse_profiles(settings)
    api_keys = _parse_api_keys(data.get("api_key", []), source, services)
    return Catalog(
        services=services,
        profiles=profiles,
        nar_reasons=settings.strings("not_available_reasons", DEFAULT_NAR_REASONS),
        stale_session_after=settings.duration("stale_session_after", timedelta(hours=24),
                                              minimum=timedelta(minutes=1)),
        stale_sweep_every=settings.duration("stale_sweep_every", timedelta(hours=1),
                                            minimum=timedelta(seconds=10)),
        api_keys=api_keys,
    )


def _parse_api_keys(raw: Any, source: str, services: Mapping[str, Service],
                    ) -> tuple[ApiKey, ...]:
    """[[api_key]] tables: keys of the external task API, each named and stored as a hash."""
    if not isinstance(raw, list):
        raise ConfigError(f"{source}: api_key: declare keys as [[api_key]] tables")
    keys: list[ApiKey] = []
    for index, item in enumerate(raw):
        if not isinstance(item, dict):
            raise ConfigError(f"{source}: api_key[{index}]: must be a table")
        r = _Reader(item, source, f"api_key[{index}]")
        name = r.text("name").strip()
        if not name:
            raise r.fail("name", "must not be empty")
        r.where = f"api_key {name!r}"
        if any(k.name == name for k in keys):
            raise r.fail("name", f"duplicate name {name!r}")
        unknown = sorted(set(item) - {"name", "sha256", "services", "scopes"})
        if unknown:
            raise r.fail(unknown[0], "unknown key (use name, sha256, services, scopes)")
        digest = r.text("sha256").strip().lower()
        if not _SHA256.match(digest):
            raise r.fail("sha256", "must be the SHA-256 hex digest of the key (64 hex digits), "
                                   "never the key itself")
        if any(k.sha256 == digest for k in keys):
            raise r.fail("sha256", "the same key is already declared")
        scopes = r.strings("scopes", DEFAULT_SCOPES)
        if not scopes:
            raise r.fail("scopes", f"name at least one of {', '.join(SCOPES)}")
        for scope in scopes:
            if scope not in SCOPES:
                raise r.fail("scopes", f"unknown scope {scope!r} (use {', '.join(SCOPES)})")
        allowed = r.strings("services")
        if not allowed and set(scopes) != {"privacy"}:
            raise r.fail("services", "name at least one service")
        for service_id in allowed:
            service = services.get(service_id)
            if service is None:
                raise r.fail("services", f"there is no service {service_id!r}")
            if Modality.EXTERNAL not in service.modalities:
                raise r.fail("services", f"service {service_id!r} does not take external tasks "
                                         "(add \"external\" to its modalities)")
        keys.append(ApiKey(name=name, sha256=digest, services=tuple(dict.fromkeys(allowed)),
                           scopes=tuple(dict.fromkeys(scopes))))
    return tuple(keys)


def _parse_profiles(settings: _Reader) -> tuple[tuple[str, bool], ...]:
    raw = settings.data.get("profiles")
    if raw is None:
        return DEFAULT_PROFILES
    if not isinstance(raw, list) or not raw:
        raise settings.fail("profiles", "must be a list of {name, on_duty} tables")
    profiles: list[tuple[str, bool]] = []
    for index, item in enumerate(raw):
        if not isinstance(item, dict):
            raise settings.fail(f"profiles[{index}]", "must be a table")
        reader = _Reader(item, settings.source, f"{settings.where}.profiles[{index}]")
        profiles.append((reader.text("name"), reader.flag("on_duty", True)))
    names = {name.lower() for name, _ in profiles}
    if "off duty" not in names:
        profiles.append(("Off Duty", False))
    return tuple(profiles)


def _parse_service(r: _Reader) -> Service:
    service_id = r.text("id")
    if not _SLUG.match(service_id):
        raise r.fail("id", f"{service_id!r} is not a slug (lowercase letters, digits, '-')")
    r.where = f"service {service_id!r}"
    modalities: list[Modality] = []
    for value in r.strings("modalities", ("im",)):
        try:
            modalities.append(Modality(value))
        except ValueError:
            raise r.fail("modalities", f"unknown modality {value!r} (use im, email, "
                                       "external)") from None
    if not modalities:
        raise r.fail("modalities", "name at least one modality")
    d = r.table("distribution")
    mode_text = d.text("mode", "direct")
    try:
        mode = DistributionMode(mode_text)
    except ValueError:
        raise d.fail("mode", f"{mode_text!r} is not direct or broadcast") from None
    distribution = Distribution(
        mode=mode,
        broadcast_size=d.number("broadcast_size", 10, minimum=1),
        ring_timeout=d.duration("ring_timeout", timedelta(seconds=30),
                                minimum=timedelta(seconds=5)),
        rona_reset=d.duration("rona_reset", timedelta(minutes=10), minimum=MIN_RONA_RESET),
        persistent_rona=d.flag("persistent_rona", False),
        redecline_after=d.duration("redecline_after", timedelta(minutes=2)),
        max_queue_time=d.duration("max_queue_time", timedelta(hours=1)),
        priority=d.number("priority", 0),
    )
    a = r.table("acw")
    acw = AcwSettings(
        duration=a.duration("duration", timedelta(seconds=20)),
        allow_early_end=a.flag("allow_early_end", True),
        max_extension=a.duration("max_extension", timedelta(minutes=1)),
    )
    c = r.table("capacity")
    capacity = {m: c.number(m.value, 1, minimum=1) for m in Modality}
    codes_table = r.table("codes")
    codes = Codes(primary=codes_table.strings("primary"),
                  secondary=codes_table.strings("secondary"))
    ctx = r.table("context")
    context = ContextSettings(url=ctx.text("url", ""), store_data=ctx.flag("store_data", False))
    it = r.table("interact")
    origins = it.strings("allowed_origins")
    for origin in origins:
        if not re.match(r"^https?://[^/\s]+$", origin):
            raise it.fail("allowed_origins", f"{origin!r} is not an origin like "
                                             "\"https://www.example.com\"")
    identity_secret = ""
    identity_key = it.text("identity_key", "").strip()
    if identity_key:
        identity_secret = it.environ.get(identity_key, "")
        if len(identity_secret) < MIN_IDENTITY_SECRET:
            raise it.fail("identity_key", f"environment variable {identity_key!r} must hold a "
                                          f"secret of at least {MIN_IDENTITY_SECRET} characters")
    interact = InteractSettings(allowed_origins=origins,
                                idle_timeout=it.duration("idle_timeout", timedelta(minutes=10)),
                                identity_secret=identity_secret)
    external = ExternalSettings(max_open=r.table("external").number("max_open", 100, minimum=0))
    supervisors = r.strings("supervisors")
    for supervisor in supervisors:
        if not supervisor.strip() or any(ch.isspace() for ch in supervisor):
            raise r.fail("supervisors", f"{supervisor!r} is not a UPN or an Entra object id")
    email = r.text("email", "")
    if email and "@" not in email:
        raise r.fail("email", f"{email!r} is not an email address")
    return Service(
        id=service_id,
        name=r.text("name", service_id),
        modalities=tuple(dict.fromkeys(modalities)),
        members=r.strings("members"),
        email=email,
        distribution=distribution,
        acw=acw,
        capacity=capacity,
        codes=codes,
        context=context,
        interact=interact,
        external=external,
        offline_message=r.text("offline_message", Service.offline_message),
        web_requests=parse_web_requests(r),
        supervisors=supervisors,
        service_level=r.duration("service_level", Service.service_level,
                                 minimum=timedelta(seconds=1)),
    )
