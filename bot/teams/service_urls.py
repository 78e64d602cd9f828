"""Which Bot Connector endpoints Switchboard calls: the Teams hosts, loopback in local mode."""

from __future__ import annotations

import functools
from dataclasses import dataclass

from yarl import URL

from bot.http import is_loopback_host

# The Bot Connector of Teams in the public cloud and the US government clouds (serviceUrl of
# every Teams activity), and Bot Framework's own channels.
TEAMS_HOSTS: tuple[str, ...] = (
    "smba.trafficmanager.net",
    "smba.infra.gcc.teams.microsoft.com",
    "smba.infra.gov.teams.microsoft.us",
    "smba.infra.dod.teams.microsoft.us",
    ".botframework.com",
)


class UntrustedServiceUrl(ValueError):
    """A serviceUrl Switchboard will not call: the message says why (never the URL itself)."""


@dataclass(frozen=True)
class ServiceUrlPolicy:
    """`hosts`: exact host names, or suffixes starting with a dot, called over https;
    `loopback`: also 127.0.0.0/8, ::1 and localhost (local mode, the Agents Playground).
    A loopback host, allowed either way, may be called over http too: no network sees it."""

    hosts: tuple[str, ...] = TEAMS_HOSTS
    loopback: bool = False

    def check(self, service_url: str) -> str:
        """The URL if Switchboard may call it; UntrustedServiceUrl otherwise."""
        if not isinstance(service_url, str):
            raise UntrustedServiceUrl("the serviceUrl is not a URL")
        refusal = _refusal(self.hosts, self.loopback, service_url)
        if refusal is not None:
            raise UntrustedServiceUrl(refusal)
        return service_url


# Every activity and every call checks its serviceUrl, and a tenant has a handful of them.
@functools.lru_cache(maxsize=1024)
def _refusal(hosts: tuple[str, ...], loopback: bool, service_url: str) -> str | None:
    """Why `service_url` may not be called, or None."""
    try:
        url = URL(service_url)
    except (ValueError, TypeError):
        return "the serviceUrl is not a URL"
    host = (url.host or "").lower().rstrip(".")
    if url.scheme not in ("http", "https") or not host:
        return "the serviceUrl is not an http(s) URL with a host"
    if url.user is not None or url.password is not None:
        return "the serviceUrl carries credentials"
    listed = any(host == allowed or (allowed.startswith(".") and host.endswith(allowed))
                 for allowed in hosts)
    if is_loopback_host(host) and (loopback or listed):
        return None
    if listed:
        return None if url.scheme == "https" else "the serviceUrl is not https"
    return ("the serviceUrl is not a Bot Connector host this app calls "
            "(SWITCHBOARD_SERVICE_URL_HOSTS adds hosts)")
