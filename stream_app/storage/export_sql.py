"""Analysts' SQL: one read-only query over the metrics database, checked by ClickHouse itself.

:func:`checked_query` admits a query in three steps, each answered by ClickHouse's own parser
and analyser (no regular expressions over SQL):

1. ``SELECT formatQuery({sql:String})`` (the text travels as a parameter): the text must parse
   as exactly ONE statement (several are refused); the result is ClickHouse's canonical text.
2. ``EXPLAIN AST`` of that text: the statement must be a SELECT (``SelectWithUnionQuery``: no
   INSERT, DROP, SET, ...), without SETTINGS, INTO OUTFILE or FORMAT of its own, its table
   functions among :data:`ALLOWED_TABLE_FUNCTIONS` (``numbers`` ...: no ``file``, ``url``,
   ``remote``, ``merge`` ...) and no function reading outside the query
   (:data:`REFUSED_FUNCTIONS`: ``file``, ``dictGet*`` ...). This runs before step 3, which would
   otherwise let the analyser touch a file or a URL.
3. ``EXPLAIN QUERY TREE``: every table the analyser resolved (joins, subqueries, ``IN table``,
   CTEs) must be in the metrics database (``system.one``, the table of a SELECT without FROM,
   aside).

The admitted query then runs wrapped as ``SELECT * FROM (<query>) SETTINGS readonly = 1,
max_execution_time, max_result_rows, max_result_bytes, result_overflow_mode = 'throw'``: the
engine itself refuses any write, setting change or table function needing more than read
access, and stops a query past its limits (mid-stream: the caller reports it).
"""

from __future__ import annotations

from dataclasses import dataclass

from stream_app.storage.client import StorageClient
from stream_app.storage.errors import StorageError
from stream_app.storage.export_plan import ExportFormat

__all__ = [
    "ALLOWED_TABLE_FUNCTIONS",
    "CLICKHOUSE_FORMATS",
    "REFUSED_FUNCTIONS",
    "QueryRefused",
    "SqlLimits",
    "SqlQuery",
    "checked_query",
]

ALLOWED_TABLE_FUNCTIONS = frozenset(
    {"numbers", "numbers_mt", "zeros", "zeros_mt", "generate_series", "generateSeries", "values"}
)
REFUSED_FUNCTIONS = frozenset({"file", "catboostEvaluate", "joinGet", "joinGetOrNull"})
_REFUSED_PREFIXES = ("dict",)
_HARMLESS_TABLES = frozenset({"system.one"})
_MAX_QUERY_CHARS = 100_000


class QueryRefused(ValueError):
    """The query is not admitted (poison: change the query). The message says why."""

    retriable = False


CLICKHOUSE_FORMATS = {
    ExportFormat.CSV: "CSV",
    ExportFormat.NDJSON: "JSONEachRow",
    ExportFormat.PARQUET: "Parquet",
}


@dataclass(frozen=True, slots=True)
class SqlLimits:
    """The engine's limits on one analyst query."""

    max_execution_time_s: int = 30
    max_result_rows: int = 1_000_000
    max_result_bytes: int = 1 << 30


@dataclass(frozen=True, slots=True)
class SqlQuery:
    """An admitted query: the text to run (already wrapped with its settings)."""

    canonical: str
    """ClickHouse's formatting of the query as given."""
    sql: str
    """What runs: the query wrapped with readonly and the limits."""
    header_sql: str
    """The same with ``LIMIT 0``: its ``CSVWithNames`` answer is the CSV header alone (the
    embedded engine streams ``CSV`` but answers ``CSVWithNames`` in one piece)."""
    tables: tuple[str, ...]


@dataclass(frozen=True, slots=True)
class _Node:
    depth: int
    kind: str
    argument: str


def _tree(lines: list[str]) -> list[_Node]:
    nodes = []
    for line in lines:
        stripped = line.lstrip(" ")
        kind, _, rest = stripped.partition(" ")
        nodes.append(_Node(len(line) - len(stripped), kind, rest.split(" (children")[0].strip()))
    return nodes


def _explain(client: StorageClient, what: str, canonical: str) -> list[str]:
    try:
        rows = client.rows(f"EXPLAIN {what} {canonical}")
    except StorageError as exc:
        raise QueryRefused(f"ClickHouse cannot analyse the query: {_engine_message(exc)}") from exc
    return [str(row[0]) for row in rows]


def _engine_message(exc: Exception) -> str:
    text = str(exc)
    start = text.find("DB::Exception: ")
    text = text[start + len("DB::Exception: ") :] if start >= 0 else text
    return text.split(" (version")[0].split("\n")[0][:300]


def _check_ast(nodes: list[_Node]) -> None:
    if not nodes or nodes[0].kind != "SelectWithUnionQuery":
        kind = nodes[0].kind if nodes else "nothing"
        raise QueryRefused(f"only one SELECT is allowed, not a {kind.removesuffix('Query')}")
    root_depth = nodes[0].depth
    for index, node in enumerate(nodes):
        if node.kind == "Set":
            raise QueryRefused("SETTINGS are fixed by the server; remove the SETTINGS clause")
        if node.depth == root_depth + 1 and node.kind == "Literal":
            raise QueryRefused("INTO OUTFILE is not allowed")
        if node.kind != "Function":
            continue
        name = node.argument
        parent = next((n for n in reversed(nodes[:index]) if n.depth < node.depth), None)
        if parent is not None and parent.kind == "TableExpression":
            if name not in ALLOWED_TABLE_FUNCTIONS:
                raise QueryRefused(
                    f"table function {name}() is not allowed (only "
                    f"{', '.join(sorted(ALLOWED_TABLE_FUNCTIONS))}); read the metrics tables"
                )
        elif name in REFUSED_FUNCTIONS or name.startswith(_REFUSED_PREFIXES):
            raise QueryRefused(f"function {name}() reads outside the metrics database")


def _tables(lines: list[str]) -> list[str]:
    tables = []
    for line in lines:
        text = line.strip()
        if text.startswith("TABLE id:") and "table_name: " in text:
            tables.append(text.split("table_name: ", 1)[1].split(",")[0].strip())
        elif text.startswith("TABLE_FUNCTION id:") and "table_function_name: " in text:
            name = text.split("table_function_name: ", 1)[1].split(",")[0].strip()
            if name not in ALLOWED_TABLE_FUNCTIONS:
                raise QueryRefused(f"table function {name}() is not allowed")
    return tables


def checked_query(client: StorageClient, database: str, text: str, limits: SqlLimits) -> SqlQuery:
    """Admit ``text`` (see the module doc) or raise :class:`QueryRefused` saying why."""
    if not text.strip():
        raise QueryRefused("the query is empty")
    if len(text) > _MAX_QUERY_CHARS:
        raise QueryRefused(f"the query is longer than {_MAX_QUERY_CHARS} characters")
    try:
        rows = client.rows("SELECT formatQuery({sql:String})", parameters={"sql": text})
    except StorageError as exc:
        message = _engine_message(exc)
        if "Multi-statements" in message:
            raise QueryRefused("one statement only: multiple statements are refused") from exc
        raise QueryRefused(f"ClickHouse cannot parse the query: {message}") from exc
    canonical = str(rows[0][0])
    _check_ast(_tree(_explain(client, "AST", canonical)))
    tables = _tables(_explain(client, "QUERY TREE", canonical))
    for table in tables:
        db = table.split(".", 1)[0]
        if db != database and table not in _HARMLESS_TABLES:
            raise QueryRefused(
                f"table {table} is outside the metrics database {database!r}; "
                f"qualify tables as {database}.<table>"
            )
    settings = (
        f"readonly = 1, max_execution_time = {int(limits.max_execution_time_s)}, "
        f"max_result_rows = {int(limits.max_result_rows)}, "
        f"max_result_bytes = {int(limits.max_result_bytes)}, result_overflow_mode = 'throw', "
        "date_time_output_format = 'iso'"
    )
    # canonical is ClickHouse's own text of one parsed SELECT: wrapping it adds no user input
    sql = f"SELECT * FROM (\n{canonical}\n) SETTINGS {settings}"  # noqa: S608
    header = f"SELECT * FROM (\n{canonical}\n) LIMIT 0 SETTINGS {settings}"  # noqa: S608
    return SqlQuery(canonical, sql, header, tuple(dict.fromkeys(tables)))
