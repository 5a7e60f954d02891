"""The expander itself, against what Grafana's formatRegistry / CustomAllValue and the
ClickHouse plugin's macros.go produce (the cases their sources and docs spell out), and run
on ClickHouse so that quoting is checked by the engine, not by eye."""

from __future__ import annotations

import pytest
from grafana_expand import ALL, Expansion, GrafanaVariable, expand, expand_macros, interpolate

from stream_app.storage.client import StorageClient

SERVERS = GrafanaVariable("servers", multi=True, include_all=True, all_value=None,
                          options=("test1", "test2", "o'brien"))  # fmt: skip
POOL = GrafanaVariable("pool", multi=True, include_all=True, all_value="'__all__'")
PROXY = GrafanaVariable("proxy", multi=False, include_all=False, all_value=None)
VARIABLES = {v.name: v for v in (SERVERS, POOL, PROXY)}


@pytest.mark.parametrize(
    ("text", "value", "expected"),
    [
        ("${servers:singlequote}", ["test1", "test2"], "'test1','test2'"),
        ("${servers:singlequote}", ["test1"], "'test1'"),  # multi: a list even for one value
        ("${servers:singlequote}", ["o'brien"], "'o\\'brien'"),
        ("${servers:sqlstring}", ["o'brien", 'a"b'], "'o''brien','a\\\"b'"),
        ("${servers:csv}", ["test1", "test2"], "test1,test2"),
        ("${servers:json}", ["test1", "test2"], '["test1","test2"]'),  # JSON.stringify
        ("[[servers:csv]]", ["test1", "test2"], "test1,test2"),
        ("${servers:singlequote}", [ALL], "'test1','test2','o\\'brien'"),  # All: every option
        ("${servers:csv}", ALL, "test1,test2,o'brien"),
    ],
)
def test_formats_as_grafana(text: str, value: list[str] | str, expected: str) -> None:
    assert interpolate(text, VARIABLES, {"servers": value}) == expected


def test_a_custom_all_value_is_inserted_unformatted() -> None:
    values = {"pool": [ALL]}
    assert interpolate("${pool:singlequote}", VARIABLES, values) == "'__all__'"
    assert interpolate("${pool:csv}", VARIABLES, values) == "'__all__'"
    assert interpolate("${pool:text}", VARIABLES, values) == "All"
    assert interpolate("${pool:singlequote}", VARIABLES, {"pool": ["a"]}) == "'a'"


def test_single_valued_and_unknown_names() -> None:
    assert interpolate("p = ${proxy:singlequote}", VARIABLES, {"proxy": "ab12"}) == "p = 'ab12'"
    assert interpolate("$__interval_s $__timeFilter(t)", VARIABLES, {}) == (
        "$__interval_s $__timeFilter(t)"
    )
    with pytest.raises(AssertionError, match="without a format"):
        interpolate("x IN ($servers)", VARIABLES, {"servers": ["a"]})


def test_macros_as_the_plugin_expands_them() -> None:
    span = Expansion(from_ms=1_700_000_000_123, to_ms=1_700_003_600_456, interval_ms=59_900)
    assert expand_macros("$__timeFilter(window_start)", span) == (
        "window_start >= toDateTime(1700000000) AND window_start <= toDateTime(1700003600)"
    )
    assert expand_macros("$__timeFilter_ms(ts)", span) == (
        "ts >= fromUnixTimestamp64Milli(1700000000123) AND "
        "ts <= fromUnixTimestamp64Milli(1700003600456)"
    )
    assert expand_macros("$__fromTime, $__toTime", span) == (
        "toDateTime(1700000000), toDateTime(1700003600)"
    )
    assert expand_macros("$__timeInterval(window_start)", span) == (
        "toStartOfInterval(toDateTime(window_start), INTERVAL 59 second)"
    )
    assert expand_macros("$__interval_s", Expansion(0, 1, 10)) == "1"  # at least 1 second
    assert expand_macros("$__dateFilter(d)", span) == (
        "d >= toDate('2023-11-14') AND d <= toDate('2023-11-14')"
    )
    with pytest.raises(AssertionError, match="not the plugin's"):
        expand_macros("$__timeGroup(t, '5m')", span)


def test_quoting_survives_clickhouse(chdb_client: StorageClient) -> None:
    span = Expansion(1_700_000_000_000, 1_700_003_600_000, 60_000)
    for fmt in ("singlequote", "sqlstring"):
        sql = expand(
            f"SELECT [${{servers:{fmt}}}], $__interval_s", span, VARIABLES, {"servers": [ALL]}
        )
        ((values, interval),) = chdb_client.rows(sql)
        assert (list(values), interval) == (["test1", "test2", "o'brien"], 60)
