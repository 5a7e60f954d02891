"""Service logging: JSON lines carry context fields and never swallow the message."""

from __future__ import annotations

import json
import logging

import pytest

from stream_app.logging_setup import JsonFormatter, configure_logging


def test_json_formatter_emits_one_object_with_context() -> None:
    record = logging.LogRecord(
        "stream_app.x", logging.WARNING, __file__, 1, "pool %s lag %d", ("poolA", 7), None
    )
    record.partition = 3
    doc = json.loads(JsonFormatter().format(record))
    assert doc["message"] == "pool poolA lag 7"
    assert doc["level"] == "WARNING"
    assert doc["partition"] == 3
    assert doc["ts"].endswith("Z")


def test_configure_logging_sets_level_and_quiets_kafka_libraries(
    capsys: pytest.CaptureFixture[str],
) -> None:
    root = logging.getLogger()
    saved_handlers, saved_level = root.handlers[:], root.level
    try:
        configure_logging("debug", json_lines=True)
        assert root.level == logging.DEBUG
        assert logging.getLogger("aiokafka").level == logging.WARNING
        logging.getLogger("stream_app.test").info("hello %s", "there")
        line = capsys.readouterr().err.strip().splitlines()[-1]
        assert json.loads(line)["message"] == "hello there"
    finally:
        root.handlers[:] = saved_handlers
        root.setLevel(saved_level)
