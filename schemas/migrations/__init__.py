"""ClickHouse migrations of the storage schema, packaged with the schemas package.

A migration is a numbered SQL file ``NNNN_name.sql`` in this package (versions unique and
applied in order; gaps leave room for areas to number their own) with two sections, the
forwards statements after a ``-- +up`` line and the backwards statements after ``-- +down``.
Statements end with ``;`` at the end of a line. Forwards steps are idempotent (``IF NOT EXISTS``,
``CREATE OR REPLACE``) so a run that failed half-way can simply be repeated; backwards steps
undo them in reverse order. A ``-- +reapply`` line before the sections marks a migration whose
forwards steps every ``migrate`` re-runs while it is applied: it creates server-wide objects
(SQL functions) that rolling back another database of the same server removes.

Files are :class:`string.Template` texts rendered with trusted values only (configuration that
was validated at start-up and constants of this package, never request input):

``db``                      the database, a quoted identifier
``on_cluster``              empty, or ``ON CLUSTER `name``` for a cluster
``aggregating_engine``      ``AggregatingMergeTree`` or its Replicated variant
``merge_tree_engine``       ``MergeTree`` or its Replicated variant
``table_settings``          the deduplication window of every MergeTree table
``ttl_10s_days``, ``ttl_1m_days``, ``ttl_1h_days``, ``ttl_1d_days``, ``ttl_proxy_1m_days``,
``ttl_proxy_1d_days``, ``ttl_raw_hours``
                            retention (the storage layer can also re-apply them with ALTER)
``bucket_value_lambda``, ``quantile_lambda``, ``latency_bucket_expr``
                            the latency histogram in SQL (:mod:`schemas.migrations.functions`)

The storage layer (:mod:`stream_app.storage.migrate`) supplies the values and runs the
statements. A migration's checksum covers its template text, so configuring other TTLs does not
change it, while editing an applied migration does.

Errors: :class:`MigrationFileError` (a :class:`schemas.errors.SchemaError`): a migration file is
malformed or a placeholder has no value. Never retriable: the package itself is broken.
"""

from __future__ import annotations

import hashlib
import itertools
import re
import string
from collections.abc import Mapping
from dataclasses import dataclass
from importlib import resources
from typing import Literal

from schemas.errors import SchemaError

__all__ = ["Direction", "Migration", "MigrationFileError", "load_migrations"]

Direction = Literal["up", "down"]

_FILE_NAME = re.compile(r"^(\d{4})_([a-z0-9_]+)\.sql$")
_SECTION = re.compile(r"^-- \+(up|down)\s*$", re.MULTILINE)
_REAPPLY = re.compile(r"^-- \+reapply\s*$", re.MULTILINE)
_STATEMENT_END = re.compile(r";[ \t]*$", re.MULTILINE)


class MigrationFileError(SchemaError, ValueError):
    """A migration file is malformed, or a placeholder of it has no value."""


def _strip_comments(sql: str) -> str:
    lines = [line for line in sql.splitlines() if not line.lstrip().startswith("--")]
    return "\n".join(lines).strip()


def _split_statements(section: str) -> tuple[str, ...]:
    statements = []
    for chunk in _STATEMENT_END.split(section):
        statement = _strip_comments(chunk)
        if statement:
            statements.append(statement)
    return tuple(statements)


@dataclass(frozen=True, slots=True)
class Migration:
    """One numbered migration: forwards and backwards statement templates."""

    version: int
    name: str
    up: tuple[str, ...]
    down: tuple[str, ...]
    checksum: str
    reapply: bool = False

    @property
    def label(self) -> str:
        """``0002_rollups``: how errors and logs name the migration."""
        return f"{self.version:04d}_{self.name}"

    @classmethod
    def parse(cls, file_name: str, text: str) -> Migration:
        """Parse a migration file; raises :class:`MigrationFileError`."""
        match = _FILE_NAME.match(file_name)
        if match is None:
            raise MigrationFileError(f"{file_name}: migration files are named NNNN_name.sql")
        parts = _SECTION.split(text)
        # parts = [preamble, "up", up_sql, "down", down_sql]
        if len(parts) != 5 or parts[1] != "up" or parts[3] != "down":
            raise MigrationFileError(
                f"{file_name}: expected one '-- +up' section followed by one '-- +down' section"
            )
        up = _split_statements(parts[2])
        down = _split_statements(parts[4])
        if not up or not down:
            raise MigrationFileError(f"{file_name}: both sections need at least one statement")
        checksum = hashlib.sha256(text.encode()).hexdigest()[:16]
        reapply = _REAPPLY.search(parts[0]) is not None
        return cls(int(match.group(1)), match.group(2), up, down, checksum, reapply)

    def render(self, direction: Direction, values: Mapping[str, str]) -> list[str]:
        """The statements of one direction with every placeholder replaced."""
        templates = self.up if direction == "up" else self.down
        rendered = []
        for template in templates:
            try:
                rendered.append(string.Template(template).substitute(values))
            except (KeyError, ValueError) as exc:
                raise MigrationFileError(
                    f"migration {self.label} ({direction}): placeholder {exc} has no value"
                ) from exc
        return rendered


def load_migrations() -> list[Migration]:
    """Every migration of this package, by version (versions are unique; gaps are allowed)."""
    migrations = []
    for entry in resources.files(__name__).iterdir():
        if entry.name.endswith(".sql"):
            migrations.append(Migration.parse(entry.name, entry.read_text(encoding="utf-8")))
    migrations.sort(key=lambda m: m.version)
    for previous, migration in itertools.pairwise(migrations):
        if previous.version == migration.version:
            raise MigrationFileError(
                f"two migrations share version {migration.version}: "
                f"{previous.label} and {migration.label}"
            )
    return migrations
