"""Exports written to files: round trips in every format, metadata, incidents, atomicity, CLI."""

from __future__ import annotations

import ast
import csv
import io
import json
from collections import Counter
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pyarrow.parquet as pq
import pytest

from schemas.alerts import AlertEvent, AlertStatus
from schemas.latency_buckets import RELATIVE_ERROR, quantile_from_counts
from stream_app.alerting.history import ClickHouseAlertHistory
from stream_app.cli import main
from stream_app.cli_export import join_relative_times
from stream_app.storage.export import PARQUET_META_KEY
from stream_app.storage.export_file import PreparedExport, prepare_export, write_export_file
from stream_app.storage.export_plan import ExportFormat, ExportRequest
from stream_app.storage.queries import StorageQueries
from stream_app.storage.query_tiers import Retention
from tests.api.rest_support import MINUTE_MS, History
from tests.exports.conftest import NOW_MS, Storage

START_MS = NOW_MS - 45 * MINUTE_MS


def _prepare(storage: Storage, fmt: ExportFormat, **extra: Any) -> PreparedExport:
    settings, client = storage
    request = ExportRequest(START_MS, NOW_MS, extra.pop("resolution", "1m"), fmt=fmt, **extra)
    return prepare_export(
        client,
        settings.database,
        request,
        now_ms=NOW_MS,
        retention=Retention.default(),
        proxy_ttl_days=90,
    )


def _csv_rows(path: Path) -> list[dict[str, Any]]:
    rows = []
    for row in csv.DictReader(io.StringIO(path.read_text())):
        rows.append(
            {
                **row,
                "requests": int(row["requests"]),
                "latency_p95_ms": float(row["latency_p95_ms"]) if row["latency_p95_ms"] else None,
                # ClickHouse writes a Map in CSV as {key:value,...}
                "latency_buckets": ast.literal_eval(row["latency_buckets"]),
                "outcomes": ast.literal_eval(row["outcomes"]),
            }
        )
    return rows


def _ndjson_rows(path: Path) -> list[dict[str, Any]]:
    rows = [json.loads(line) for line in path.read_text().splitlines()]
    for row in rows:
        row["latency_buckets"] = {int(k): v for k, v in row["latency_buckets"].items()}
    return rows


def _parquet_rows(path: Path) -> list[dict[str, Any]]:
    rows = pq.read_table(path).to_pylist()
    for row in rows:
        row["latency_buckets"] = dict(row["latency_buckets"])
        row["outcomes"] = dict(row["outcomes"])
    return rows


READERS = {
    ExportFormat.CSV: _csv_rows,
    ExportFormat.NDJSON: _ndjson_rows,
    ExportFormat.PARQUET: _parquet_rows,
}


@pytest.mark.parametrize("fmt", list(ExportFormat))
def test_round_trip_totals_and_percentiles(
    export_storage: Storage, history: History, tmp_path: Path, fmt: ExportFormat
) -> None:
    settings, client = export_storage
    prepared = _prepare(export_storage, fmt)
    out = tmp_path / f"x{fmt.suffix}"
    document = write_export_file(client, prepared, out, chunk_rows=1_000)
    rows = READERS[fmt](out)
    assert document["rows"] == len(rows) > 0
    assert prepared.plan.table == "agg_1m"
    assert prepared.plan.step_s == 60
    stored = StorageQueries(client, settings.database).window_totals(
        prepared.plan.start_ms, prepared.plan.end_ms, "1m"
    )
    want: Counter[tuple[str, str]] = Counter()
    for w in stored:
        want[(w.pool, w.region)] += w.requests
    got: Counter[tuple[str, str]] = Counter()
    for row in rows:
        got[(row["pool"], row["region"])] += row["requests"]
    assert got == want
    assert sum(got.values()) == len(history.events)  # every seeded event, once
    timeouts = sum(int(row["outcomes"].get("timeout", 0)) for row in rows)
    assert timeouts == sum(1 for e in history.events if e.outcome.value == "timeout")
    for row in rows:
        counts = {int(k): int(v) for k, v in row["latency_buckets"].items()}
        recomputed = quantile_from_counts(counts, 0.95)
        assert recomputed is not None
        assert row["latency_p95_ms"] is not None
        assert abs(recomputed - row["latency_p95_ms"]) <= RELATIVE_ERROR * recomputed
    sidecar = json.loads(Path(f"{out}.meta.json").read_text())
    assert sidecar == document
    if fmt is ExportFormat.PARQUET:
        footer = pq.ParquetFile(out).metadata.metadata[PARQUET_META_KEY.encode()]
        assert json.loads(footer) == document


def test_percentiles_merge_over_windows_from_exported_buckets(
    export_storage: Storage, history: History, tmp_path: Path
) -> None:
    """The p95 of the whole span, from the exported 1 min buckets merged, equals the stored
    one (pwm_quantile over every 10 s window): the metadata's recipe works."""
    settings, client = export_storage
    out = tmp_path / "x.ndjson"
    write_export_file(client, _prepare(export_storage, ExportFormat.NDJSON), out)
    merged: Counter[int] = Counter()
    for row in _ndjson_rows(out):
        if (row["pool"], row["region"]) == ("residential", "eu-west"):
            merged.update(row["latency_buckets"])
    stored = StorageQueries(client, settings.database).percentiles(
        START_MS, NOW_MS, [0.95], "10s", pool="residential", region="eu-west", by_window=False
    )
    assert quantile_from_counts(dict(merged), 0.95) == stored[0].quantiles[0.95]


def test_filters_proxies_and_metadata(
    export_storage: Storage, history: History, tmp_path: Path
) -> None:
    _, client = export_storage
    prepared = _prepare(
        export_storage, ExportFormat.CSV, pools=("residential",), regions=("eu-west",), proxies=True
    )
    out = tmp_path / "p.csv"
    document = write_export_file(client, prepared, out)
    rows = list(csv.DictReader(io.StringIO(out.read_text())))
    assert {(r["pool"], r["region"]) for r in rows} == {("residential", "eu-west")}
    bad = [r for r in rows if r["proxy_id"] == history.bad_proxy]
    assert bad
    assert all(float(r["error_rate"]) == 1.0 for r in bad)
    assert document["filters"] == {
        "pools": ["residential"],
        "regions": ["eu-west"],
        "proxies": True,
    }
    assert document["resolution"]["table"] == "proxy_1m"
    assert document["histogram"]["gamma"] == 1.02
    assert document["schema_version"] == 1


def test_a_range_past_retention_falls_back_and_says_why(export_storage: Storage) -> None:
    settings, client = export_storage
    request = ExportRequest(NOW_MS - 200 * 86_400_000, NOW_MS - 199 * 86_400_000, "10s")
    prepared = prepare_export(
        client,
        settings.database,
        request,
        now_ms=NOW_MS,
        retention=Retention.default(),
        proxy_ttl_days=90,
    )
    assert prepared.plan.table == "agg_1h"
    why = prepared.metadata(None)["resolution"]["why"]
    assert "agg_10s keeps 14 days" in why
    assert "agg_1h" in why


def _alert(status: AlertStatus, starts_at: datetime, pool: str) -> AlertEvent:
    return AlertEvent(
        labels={
            "alertname": "PoolErrors",
            "rule_id": "pool-errors",
            "pool": pool,
            "region": "eu-west",
            "severity": "page",
        },
        annotations={"summary": f"errors in {pool}"},
        status=status,
        starts_at=starts_at,
        ends_at=starts_at + timedelta(minutes=5) if status is AlertStatus.RESOLVED else None,
        value=0.3,
        threshold=0.1,
        window_start_ms=int(starts_at.timestamp() * 1000) - 10_000,
        window_end_ms=int(starts_at.timestamp() * 1000),
    )


def test_incidents_of_the_span_are_in_the_metadata(
    export_storage: Storage, history: History, tmp_path: Path
) -> None:
    settings, client = export_storage
    begun = datetime.fromtimestamp((NOW_MS - 20 * MINUTE_MS) / 1000, UTC)
    ClickHouseAlertHistory(client, settings.database).write(
        [
            _alert(AlertStatus.FIRING, begun, "residential"),
            _alert(AlertStatus.RESOLVED, begun, "residential"),
            _alert(AlertStatus.FIRING, begun - timedelta(days=3), "mobile"),  # outside the span
            _alert(AlertStatus.FIRING, begun, "mobile"),  # filtered out by pool
        ]
    )
    out = tmp_path / "i.parquet"
    document = write_export_file(
        client, _prepare(export_storage, ExportFormat.PARQUET, pools=("residential",)), out
    )
    (incident,) = document["incidents"]
    assert incident["rule_id"] == "pool-errors"
    assert incident["severity"] == "page"
    assert incident["scope"]["pool"] == "residential"
    assert incident["summary"] == "errors in residential"
    assert incident["start"] == begun.isoformat().replace("+00:00", "Z")
    assert incident["end"] == (begun + timedelta(minutes=5)).isoformat().replace("+00:00", "Z")


class Boom(RuntimeError):
    pass


@pytest.mark.parametrize("fmt", list(ExportFormat))
def test_an_export_failing_mid_way_leaves_no_file(
    export_storage: Storage, history: History, tmp_path: Path, fmt: ExportFormat
) -> None:
    _, client = export_storage
    seen: list[int] = []

    def fail_after_first(index: int, rows: int) -> None:
        seen.append(rows)
        if index == 1:
            raise Boom("killed mid-way")

    out = tmp_path / f"x{fmt.suffix}"
    with pytest.raises(Boom):
        write_export_file(
            client,
            _prepare(export_storage, fmt, resolution="10s"),
            out,
            chunk_rows=1_000,
            on_chunk=fail_after_first,
        )
    assert seen
    assert seen[0] > 0
    assert list(tmp_path.iterdir()) == []  # no file, no sidecar, no temporary file


def test_cli_export_writes_file_and_sidecar(
    export_storage: Storage, history: History, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    settings, _ = export_storage
    out = tmp_path / "cli.parquet"
    code = main(
        [
            "export", "--from", "-50m", "--to", "now", "--resolution", "1m",
            "--pool", "mobile", "--region", "us-east", "--region", "eu-west",
            "--format", "parquet", "--output", str(out),
            "--dsn", settings.dsn, "--database", settings.database,
        ]
    )  # fmt: skip
    assert code == 0, capsys.readouterr().err
    table = pq.read_table(out)
    assert set(table.column("pool").to_pylist()) == {"mobile"}
    meta = json.loads(Path(f"{out}.meta.json").read_text())
    assert meta["rows"] == table.num_rows > 0
    assert "rows from agg_1m" in capsys.readouterr().err


def test_relative_times_may_follow_their_option_as_a_separate_word() -> None:
    assert join_relative_times(["export", "--from", "-90d", "--to", "-15m", "--pool", "-1d"]) == [
        "export", "--from=-90d", "--to=-15m", "--pool", "-1d",
    ]  # fmt: skip
    assert join_relative_times(["export", "--from", "-x"]) == ["export", "--from", "-x"]


def test_cli_refuses_a_bad_time(capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["export", "--from", "yesterday"]) == 2
    assert "not a time" in capsys.readouterr().err


@pytest.mark.parametrize("fmt", list(ExportFormat))
def test_an_empty_span_is_a_valid_empty_file(
    export_storage: Storage, tmp_path: Path, fmt: ExportFormat
) -> None:
    settings, client = export_storage
    request = ExportRequest(NOW_MS - 3 * 86_400_000, NOW_MS - 2 * 86_400_000, "1h", fmt=fmt)
    prepared = prepare_export(
        client, settings.database, request, now_ms=NOW_MS, retention=Retention.default(),
        proxy_ttl_days=90,
    )  # fmt: skip
    out = tmp_path / f"empty{fmt.suffix}"
    assert write_export_file(client, prepared, out)["rows"] == 0
    if fmt is ExportFormat.PARQUET:
        table = pq.read_table(out)
        assert table.num_rows == 0
        assert "latency_buckets" in table.column_names
    elif fmt is ExportFormat.CSV:
        assert out.read_text().startswith('"window_start","step_s","pool","region"')
        assert len(out.read_text().splitlines()) == 1  # the header alone
    else:
        assert out.read_bytes() == b""
