"""How payload values and ranges are read from what Grafana interpolates and sends (pure)."""

from __future__ import annotations

from typing import Any

import pytest
from pydantic import ValidationError

from api.grafana_model import GrafanaRange, QueryTarget, payload_values


@pytest.mark.parametrize(
    ("sent", "values"),
    [
        ("mobile", ["mobile"]),
        (["mobile", "residential"], ["mobile", "residential"]),  # json format
        ("mobile,residential", ["mobile", "residential"]),  # csv format
        ("(mobile|residential)", ["mobile", "residential"]),  # regex format (the builder)
        ("(eu\\.west|us-east)", ["eu.west", "us-east"]),  # regex escapes are undone
        ("{mobile,residential}", ["mobile", "residential"]),  # glob format
        ("mobile,mobile", ["mobile"]),
        (None, None),
        ("", None),
        ("$__all", None),
        (".*", None),
        (["mobile", "$__all"], None),
    ],
)
def test_payload_values_in_every_variable_format(sent: Any, values: list[str] | None) -> None:
    assert payload_values(sent) == values


def test_payloads_arrive_as_objects_or_as_the_code_editors_text() -> None:
    as_text = QueryTarget.model_validate({"target": "requests", "payload": '{"pool": "a"}'})
    assert as_text.payload == {"pool": "a"}
    assert QueryTarget.model_validate({"target": "requests", "payload": " "}).payload == {}
    assert QueryTarget.model_validate({"target": "requests"}).payload == {}
    with pytest.raises(ValidationError, match="payload"):
        QueryTarget.model_validate({"target": "requests", "payload": "[1, 2]"})


def test_ranges_are_iso_text_or_epoch_ms_and_bounded() -> None:
    iso = GrafanaRange.model_validate(
        {"from": "2026-11-26T15:00:00.000Z", "to": "2026-11-26T21:00:00.000Z"}
    )
    epoch = GrafanaRange.model_validate({"from": 1795705200000, "to": "1795726800000"})
    assert (
        (iso.from_ms, iso.to_ms) == (epoch.from_ms, epoch.to_ms) == (1795705200000, 1795726800000)
    )
    for bad in (
        {"from": "2026-11-26T21:00:00Z", "to": "2026-11-26T15:00:00Z"},  # reversed
        {"from": "1990-01-01T00:00:00Z", "to": "2026-01-01T00:00:00Z"},  # over ten years
        {"from": "2101-01-01T00:00:00Z", "to": "2102-01-01T00:00:00Z"},
        {"from": True, "to": 2},
    ):
        with pytest.raises(ValidationError):
            GrafanaRange.model_validate(bad)
