"""`supervisors` and `service_level` in the services file: parsed, or an error naming the key."""

from __future__ import annotations

from datetime import timedelta
from typing import Any

import pytest

from bot.config import ConfigError, parse_catalog


def catalog(**service: Any) -> Any:
    return parse_catalog({"service": [{"id": "sales", **service}, {"id": "billing"}]},
                         "svc.toml")


def test_supervisors_by_upn_or_object_id_any_case() -> None:
    parsed = catalog(supervisors=["MeganB@example.com", "00000000-0000-0000-0000-0000000000AB"])
    sales = parsed.service("sales")
    assert sales.supervised_by("meganb@EXAMPLE.com", None)
    assert sales.supervised_by(None, "00000000-0000-0000-0000-0000000000ab")
    assert not sales.supervised_by("alexw@example.com", "other")
    assert parsed.supervised("meganb@example.com", None) == ("sales",)
    assert parsed.supervised("alexw@example.com", None) == ()
    assert parsed.service("billing").supervisors == ()


def test_service_level_threshold_defaults_to_20_seconds() -> None:
    parsed = catalog(service_level="45s")
    assert parsed.service("sales").service_level == timedelta(seconds=45)
    assert parsed.service("billing").service_level == timedelta(seconds=20)


@pytest.mark.parametrize(("value", "message"), [
    ({"supervisors": "meganb@example.com"}, "service 'sales'.supervisors: must be a list of "
                                            "strings"),
    ({"supervisors": [""]}, "service 'sales'.supervisors: '' is not a UPN or an Entra object id"),
    ({"supervisors": ["megan b@example.com"]}, "is not a UPN or an Entra object id"),
    ({"service_level": "0s"}, "service 'sales'.service_level: must be at least 1s"),
    ({"service_level": "soon"}, "service 'sales'.service_level:"),
])
def test_bad_values_name_the_key(value: dict[str, Any], message: str) -> None:
    with pytest.raises(ConfigError, match=r"svc\.toml: ") as caught:
        catalog(**value)
    assert message in str(caught.value)
