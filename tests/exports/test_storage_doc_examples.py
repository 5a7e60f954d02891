"""Every example query of docs/storage.md runs, through POST /api/v1/sql, on seeded data."""

from __future__ import annotations

import json
import re
from pathlib import Path

import pytest

from tests.api.rest_support import ADMIN_TOKEN, History, client
from tests.exports.conftest import Storage
from tests.exports.test_export_http import _app

DOC = Path(__file__).resolve().parents[2] / "docs" / "storage.md"
EXAMPLES = re.findall(r"```sql\n(.*?)```", DOC.read_text(), flags=re.DOTALL)


def test_the_doc_has_examples() -> None:
    assert len(EXAMPLES) >= 5


@pytest.mark.parametrize("query", EXAMPLES, ids=[q.splitlines()[0][3:40] for q in EXAMPLES])
async def test_example_runs(export_storage: Storage, history: History, query: str) -> None:
    sql = query.replace("proxywhirl.", f"{export_storage[0].database}.")
    async with client(_app(export_storage), ADMIN_TOKEN) as http:
        response = await http.post("/api/v1/sql", json={"query": sql, "format": "ndjson"})
    assert response.status_code == 200, response.text
    lines = [json.loads(line) for line in response.text.splitlines()]
    assert lines[-1] == {"export_complete": {"rows": None}}
    if "alert_history" not in query:
        assert len(lines) > 1  # the seeded traffic shows
