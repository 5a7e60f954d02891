"""Hot reload of the YAML rules file: poll, validate, swap atomically, audit.

:class:`RulesFileWatcher` checks the file every ``poll_interval_s`` (default 1 s: an edit takes
effect within about a second, well inside the 5 s promise) by its ``stat`` (mtime, size, inode)
and, when that changed, by the SHA-256 of its text. A new version is parsed with
:func:`schemas.rules.parse_rules`:

- valid: the new :class:`~schemas.rules.RuleSet` is handed to ``apply`` (one call: the engine
  swaps its rules in one step), ``pwm_rules_last_reload_ok`` is 1, and the rule changes are
  written to the audit table (actor ``file:<path>``) by :class:`~.history.RuleAuditWriter`,
  which diffs against what the audit already holds; when ClickHouse is down the audit is
  retried on every poll until it is written.
- invalid (or unreadable): the rules in force stay, ``pwm_rules_reload_errors_total`` counts the
  refused version once, ``pwm_rules_last_reload_ok`` is 0 and one error log names the file, the
  line, the rule and the field of every problem. Nothing is audited for a refused version.

The first load (:meth:`RulesFileWatcher.load_initial`) raises :class:`~.errors.RulesFileError` for
an invalid file: a service must not start without its rules.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import os
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

from schemas.errors import RulesError
from schemas.rules import RuleSet, parse_rules
from stream_app.alerting.errors import AlertingError, RulesFileError
from stream_app.alerting.history import RuleAuditWriter
from stream_app.alerting.metrics import AlertingMetrics
from stream_app.alerting.rule_changes import rules_by_id

logger = logging.getLogger(__name__)

RulesApplier = Callable[[RuleSet], None]
"""Puts a validated rule set in force (e.g. ``engine.replace_rules`` plus publishing its output)."""


@dataclass(frozen=True, slots=True)
class _FileStamp:
    mtime_ns: int
    size: int
    inode: int


def _stamp(path: Path) -> _FileStamp:
    st = os.stat(path)
    return _FileStamp(st.st_mtime_ns, st.st_size, st.st_ino)


def load_rules_file(path: Path) -> RuleSet:
    """Read and validate a rules file; RulesFileError lists every problem."""
    try:
        text = path.read_text(encoding="utf-8")
    except (OSError, UnicodeDecodeError) as exc:
        raise RulesFileError(str(path), [f"{path}: cannot read: {exc}"]) from exc
    try:
        return parse_rules(text, str(path))
    except RulesError as exc:
        raise RulesFileError(str(path), exc.messages) from exc


class RulesFileWatcher:
    """Keeps the rules in force in step with one YAML file."""

    def __init__(
        self,
        path: Path,
        apply: RulesApplier,
        metrics: AlertingMetrics,
        *,
        audit: RuleAuditWriter | None = None,
        poll_interval_s: float = 1.0,
    ) -> None:
        if not 0 < poll_interval_s <= 1.0:
            raise ValueError("poll_interval_s must be in (0, 1] to apply edits within 5 s")
        self.path = path
        self.actor = f"file:{path}"
        self._apply = apply
        self._metrics = metrics
        self._audit = audit
        self._poll_interval_s = poll_interval_s
        self._stamp: _FileStamp | None = None
        self._rules: RuleSet | None = None
        self._refused_digest: str | None = None
        self._audit_due = False
        self._task: asyncio.Task[None] | None = None
        self.last_errors: list[str] = []

    @property
    def rules(self) -> RuleSet:
        """The rule set in force."""
        if self._rules is None:
            raise RuntimeError("no rules loaded yet: call load_initial() first")
        return self._rules

    async def load_initial(self) -> RuleSet:
        """Load the file (RulesFileError when invalid), apply it and audit it."""
        stamp = await asyncio.to_thread(_stamp, self.path)
        try:
            rule_set = await asyncio.to_thread(load_rules_file, self.path)
        except RulesFileError as exc:
            self._refuse(exc, digest=None)
            raise
        self._put_in_force(rule_set, stamp)
        await self._flush_audit()
        return rule_set

    async def check_once(self) -> bool:
        """Reload if the file changed; True when a new version was put in force."""
        try:
            changed = await self._check()
        finally:
            if self._audit_due:
                await self._flush_audit()
        return changed

    async def _check(self) -> bool:
        try:
            stamp = await asyncio.to_thread(_stamp, self.path)
        except OSError as exc:
            if self._refused_digest != "<missing>":
                self._refuse(
                    RulesFileError(str(self.path), [f"{self.path}: cannot read: {exc}"]),
                    digest="<missing>",
                )
            return False
        if stamp == self._stamp:
            return False
        try:
            rule_set = await asyncio.to_thread(load_rules_file, self.path)
        except RulesFileError as exc:
            digest = f"{stamp.mtime_ns}:{stamp.size}:{stamp.inode}"
            if digest != self._refused_digest:
                self._refuse(exc, digest=digest)
            self._stamp = stamp
            return False
        self._stamp = stamp
        if self._rules is not None and rule_set.digest == self._rules.digest:
            # Touched or rewritten with the same text; recover from an earlier refusal if any.
            self._refused_digest = None
            self._metrics.last_reload_ok.set(1)
            return False
        self._put_in_force(rule_set, stamp)
        return True

    def _put_in_force(self, rule_set: RuleSet, stamp: _FileStamp) -> None:
        self._apply(rule_set)
        self._rules = rule_set
        self._stamp = stamp
        self._refused_digest = None
        self.last_errors = []
        self._metrics.last_reload_ok.set(1)
        self._metrics.reloads.inc()
        self._audit_due = self._audit is not None
        logger.info(
            "rules file %s in force: %d rule(s), sha256 %s",
            self.path,
            len(rule_set.rules),
            rule_set.digest[:12],
        )

    def _refuse(self, exc: RulesFileError, *, digest: str | None) -> None:
        self._refused_digest = digest
        self.last_errors = list(exc.problems)
        self._metrics.reload_errors.inc()
        self._metrics.last_reload_ok.set(0)
        kept = "no rules loaded" if self._rules is None else f"{len(self._rules.rules)} rule(s)"
        logger.error(
            "rules file %s refused, keeping the previous rules (%s): %s",
            self.path,
            kept,
            "; ".join(exc.problems),
        )

    async def _flush_audit(self) -> None:
        if self._audit is None or self._rules is None:
            self._audit_due = False
            return
        rules = self._rules
        try:
            changes = await self._audit.record_async(
                rules_by_id(rules), actor=self.actor, source_digest=rules.digest
            )
        except AlertingError as exc:
            self._audit_due = True
            self._metrics.audit_failures.inc()
            logger.warning("rule audit for %s not written yet, will retry: %s", self.path, exc)
            return
        self._audit_due = False
        if changes:
            logger.info(
                "rule audit: %d change(s) from %s recorded (%s)",
                len(changes),
                self.path,
                ", ".join(f"{c.action} {c.rule_id}" for c in changes),
            )

    async def run(self) -> None:
        """Poll until cancelled."""
        while True:
            await asyncio.sleep(self._poll_interval_s)
            try:
                await self.check_once()
            except Exception:
                # apply() raising is a bug in the caller; keep watching the file regardless.
                logger.exception("rules reload of %s failed unexpectedly", self.path)

    def start(self) -> None:
        """Run :meth:`run` as a task (after :meth:`load_initial`)."""
        if self._task is None:
            self._task = asyncio.create_task(self.run(), name="rules-file-watcher")

    async def stop(self) -> None:
        """Stop polling; an audit still due (cut short by the stop) is written first."""
        if self._task is not None:
            self._task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._task
            self._task = None
        if self._audit_due:
            await self._flush_audit()
