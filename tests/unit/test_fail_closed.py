"""Fail closed: local mode stays on loopback, production needs its public host, Teams is only
called at its own hosts, and the customer's address is read behind trusted proxies only."""

from __future__ import annotations

import pytest
from aiohttp.test_utils import make_mocked_request

from bot.app import public_origin
from bot.config import ConfigError, load_settings
from bot.interact.api import InteractApi, client_ip
from bot.teams.service_urls import ServiceUrlPolicy, UntrustedServiceUrl

APP = {"MicrosoftAppId": "bot-app", "SWITCHBOARD_PUBLIC_HOST": "bot.example.com",
       "MicrosoftAppTenantId": "tenant"}


def test_local_mode_listens_on_loopback_unless_asked_to_do_otherwise() -> None:
    assert load_settings({}).host == "127.0.0.1"
    assert load_settings({"SWITCHBOARD_LOCAL_MODE": "1"}).host == "0.0.0.0"
    assert load_settings({"SWITCHBOARD_HOST": "10.1.2.3"}).host == "10.1.2.3"
    assert load_settings(APP).host == "0.0.0.0"


def test_local_mode_can_be_refused() -> None:
    with pytest.raises(ConfigError, match="SWITCHBOARD_LOCAL_MODE=0 refuses local mode"):
        load_settings({"SWITCHBOARD_LOCAL_MODE": "0"})
    assert load_settings({**APP, "SWITCHBOARD_LOCAL_MODE": "0"}).app_id == "bot-app"
    with pytest.raises(ConfigError, match="SWITCHBOARD_LOCAL_MODE"):
        load_settings({"SWITCHBOARD_LOCAL_MODE": "yes"})


def test_production_needs_its_public_host() -> None:
    with pytest.raises(ConfigError, match="SWITCHBOARD_PUBLIC_HOST: required"):
        load_settings({"MicrosoftAppId": "bot-app"})


def test_trusted_proxies_and_extra_connector_hosts_are_read() -> None:
    settings = load_settings({"SWITCHBOARD_TRUSTED_PROXIES": "1",
                              "SWITCHBOARD_SERVICE_URL_HOSTS": " Connector.Example.com , .x.io"})
    assert settings.trusted_proxies == 1
    assert settings.service_url_hosts == ("connector.example.com", ".x.io")
    for bad in ("-1", "many", "11"):
        with pytest.raises(ConfigError, match="SWITCHBOARD_TRUSTED_PROXIES"):
            load_settings({"SWITCHBOARD_TRUSTED_PROXIES": bad})


@pytest.mark.parametrize("url", [
    "https://smba.trafficmanager.net/amer/",
    "https://smba.infra.gcc.teams.microsoft.com/teams",
    "https://europe.webchat.botframework.com/",
])
def test_teams_hosts_are_called(url: str) -> None:
    assert ServiceUrlPolicy().check(url) == url


@pytest.mark.parametrize("url", [
    "http://smba.trafficmanager.net/amer/",  # not https
    "https://smba.trafficmanager.net.evil.example/",
    "https://evilbotframework.com/",
    "https://user:secret@smba.trafficmanager.net/amer/",
    "file:///etc/passwd",
    "http://127.0.0.1:3978/",  # loopback outside local mode
    "https:///no-host",
    "not a url",
])
def test_other_service_urls_are_refused(url: str) -> None:
    with pytest.raises(UntrustedServiceUrl):
        ServiceUrlPolicy().check(url)


def test_loopback_is_called_in_local_mode_or_when_listed() -> None:
    assert ServiceUrlPolicy(loopback=True).check("http://127.0.0.1:56150/_connector")
    assert ServiceUrlPolicy(loopback=True).check("http://localhost:9/")
    assert ServiceUrlPolicy(("127.0.0.1",)).check("http://127.0.0.1:9/")
    with pytest.raises(UntrustedServiceUrl, match="credentials"):
        ServiceUrlPolicy(loopback=True).check("http://u:p@127.0.0.1:9/")
    with pytest.raises(UntrustedServiceUrl):
        ServiceUrlPolicy(loopback=True).check("http://10.0.0.1:9/")


def request(forwarded: list[str], peer: str = "10.0.0.9") -> object:
    headers = [("X-Forwarded-For", value) for value in forwarded]
    return make_mocked_request("POST", "/", headers=headers,
                               transport=_Transport(peer))


class _Transport:
    def __init__(self, peer: str) -> None:
        self.peer = peer

    def get_extra_info(self, name: str, default: object = None) -> object:
        return (self.peer, 1234) if name == "peername" else default


def test_the_customer_address_is_the_peer_without_trusted_proxies() -> None:
    assert client_ip(request(["1.2.3.4"]), 0) == "10.0.0.9"  # a claim, not trusted


def test_behind_one_proxy_the_address_it_appended_counts_not_what_the_client_claimed() -> None:
    assert client_ip(request(["6.6.6.6, 1.2.3.4"]), 1) == "1.2.3.4"
    assert client_ip(request(["6.6.6.6", "1.2.3.4"]), 1) == "1.2.3.4"
    assert client_ip(request(["9.9.9.9, 6.6.6.6, 1.2.3.4"]), 2) == "6.6.6.6"
    assert client_ip(request([]), 1) == "10.0.0.9"  # not through the proxy after all


def test_own_origin_is_the_public_host_never_the_host_header() -> None:
    api = InteractApi(public_origin=public_origin("bot.example.com/"))
    assert api._own_origin("https://bot.example.com")
    assert not api._own_origin("http://bot.example.com")
    assert not api._own_origin("https://evil.example")
    assert public_origin("https://bot.example.com/") == "https://bot.example.com"


def test_without_a_public_host_only_loopback_pages_are_own() -> None:
    api = InteractApi()
    assert api._own_origin("http://localhost:3978")
    assert api._own_origin("http://127.0.0.1:8080")
    # DNS rebinding: a name that resolves to this server sends it as Host and Origin alike.
    assert not api._own_origin("http://rebind.evil.example:3978")
    assert not api._own_origin("null")
