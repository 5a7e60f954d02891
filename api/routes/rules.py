"""REST v1 alert rules: read the rules file (read role), replace it or add a rule (admin).

A write goes the way an edit of the file goes: the whole new file is validated with
:func:`schemas.rules.parse_rules` (an invalid body is a 422 listing every problem with its line,
rule and field, and the rules in force stay), the rule changes are written to the audit
(:class:`stream_app.alerting.history.RuleAuditWriter`, actor ``api:<token name>``), then the file
is replaced atomically (a temporary file in the same directory, fsync, rename), so the running
:class:`~stream_app.alerting.rules_watcher.RulesFileWatcher` reloads it within a second and finds
the change already audited. If the audit cannot be written (storage down) nothing changes: 503.

- ``PUT /api/v1/rules``: the whole file, YAML (``application/yaml``) or JSON
  (``application/json``; JSON is YAML). The text is stored as sent, comments included.
- ``POST /api/v1/rules``: one rule (JSON) appended to the file's top-level ``rules``; the file is
  rewritten from its data (comments are lost: use PUT to keep them).
"""

from __future__ import annotations

import asyncio
import json
import logging
import os
import tempfile
from pathlib import Path
from typing import Annotated, Any

import yaml
from fastapi import APIRouter, Body, Depends, HTTPException, Request
from fastapi.responses import JSONResponse
from pydantic import BaseModel

from api.auth import AUTH_RESPONSES, Caller, Role, require_role
from api.problems import problem
from schemas.errors import RulesError
from schemas.rules import MAX_RULES_FILE_CHARS, RuleSet, parse_rules
from stream_app.alerting.errors import AlertingError, RulesFileError
from stream_app.alerting.history import RuleAuditWriter
from stream_app.alerting.rule_changes import rules_by_id
from stream_app.alerting.rules_watcher import load_rules_file
from stream_app.storage.queries import StorageQueries

__all__ = ["current_rules", "router"]

logger = logging.getLogger(__name__)

router = APIRouter(
    prefix="/api/v1/rules",
    tags=["rules"],
    responses=AUTH_RESPONSES,
)

_YAML_TYPES = ("application/yaml", "application/x-yaml", "text/yaml", "text/plain")
_SOURCE = "request body"


class RulesView(BaseModel):
    """The rules file: its text, whether it is valid, and the rules it defines."""

    source: str
    digest: str | None
    valid: bool
    problems: list[str]
    rules: list[dict[str, Any]]
    text: str


class RulesChange(BaseModel):
    """What a write changed (each rule added, changed or removed) and the new file's digest."""

    digest: str
    changes: list[dict[str, str]]


def _path(request: Request) -> Path:
    path: Path | None = request.app.state.rules_path
    if path is None:
        raise HTTPException(status_code=404, detail="this server has no rules file")
    return path


def _lock(request: Request) -> asyncio.Lock:
    lock: asyncio.Lock | None = getattr(request.app.state, "rules_lock", None)
    if lock is None:
        lock = request.app.state.rules_lock = asyncio.Lock()
    return lock


def current_rules(request: Request) -> RuleSet | None:
    """The rules of the rules file as valid now (None without a file or while it is invalid);
    parsed again only when the file changed. Blocking: call from a thread."""
    path: Path | None = request.app.state.rules_path
    if path is None:
        return None
    try:
        st = path.stat()
    except OSError:
        return None
    stamp = (st.st_mtime_ns, st.st_size, st.st_ino)
    cached: tuple[tuple[int, int, int], RuleSet | None] | None = getattr(
        request.app.state, "rules_cache", None
    )
    if cached is not None and cached[0] == stamp:
        return cached[1]
    try:
        rule_set: RuleSet | None = load_rules_file(path)
    except RulesFileError:
        rule_set = None
    request.app.state.rules_cache = (stamp, rule_set)
    return rule_set


def _read(path: Path) -> RulesView:
    try:
        text = path.read_text(encoding="utf-8")
    except (OSError, UnicodeDecodeError) as exc:
        reason = f"{path.name}: cannot read ({type(exc).__name__})"
        raise RulesFileError(str(path), [reason]) from exc
    try:
        rule_set = load_rules_file(path)
    except RulesFileError as exc:
        return RulesView(
            source=path.name, digest=None, valid=False, problems=exc.problems, rules=[], text=text
        )
    rules = [r.model_dump(mode="json") for r in rule_set.rules]
    return RulesView(
        source=path.name, digest=rule_set.digest, valid=True, problems=[], rules=rules, text=text
    )


@router.get(
    "",
    summary="The alert rules file and the rules it defines",
    dependencies=[Depends(require_role(Role.READ))],
)
async def get_rules(request: Request) -> RulesView:
    path = _path(request)
    try:
        return await asyncio.to_thread(_read, path)
    except RulesFileError as exc:
        raise HTTPException(status_code=503, detail="; ".join(exc.problems)) from exc


def _invalid(request: Request, messages: list[str]) -> JSONResponse:
    return problem(
        422,
        "Invalid rules",
        "; ".join(messages) or "invalid rules",
        instance=request.url.path,
        problems=messages,
    )


def _validate(text: str) -> RuleSet:
    return parse_rules(text, _SOURCE)


def _write_atomically(path: Path, text: str) -> None:
    mode = path.stat().st_mode & 0o777 if path.exists() else 0o644
    fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".tmp", dir=path.parent)
    try:
        with os.fdopen(fd, "w", encoding="utf-8") as out:
            out.write(text)
            out.flush()
            os.fsync(out.fileno())
        os.chmod(tmp, mode)
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise
    dir_fd = os.open(path.parent, os.O_RDONLY)
    try:
        os.fsync(dir_fd)
    finally:
        os.close(dir_fd)


async def _apply(request: Request, caller: Caller, text: str) -> JSONResponse:
    try:
        rule_set = _validate(text)
    except RulesError as exc:
        return _invalid(request, exc.messages)
    path = _path(request)
    queries: StorageQueries = request.app.state.queries
    audit = RuleAuditWriter(queries.client, queries.database)
    try:
        changes = await audit.record_async(
            rules_by_id(rule_set), actor=caller.actor, source_digest=""
        )
    except AlertingError as exc:
        logger.warning("rules write by %s refused: the audit failed: %s", caller.actor, exc)
        raise HTTPException(
            status_code=503, detail="storage: the rule audit could not be written"
        ) from exc
    await asyncio.to_thread(_write_atomically, path, text)
    logger.info(
        "rules file %s replaced by %s (sha256 %s): %s",
        path,
        caller.actor,
        rule_set.digest[:12],
        ", ".join(f"{c.action} {c.rule_id}" for c in changes) or "no rule changed",
    )
    body = RulesChange(
        digest=rule_set.digest,
        changes=[{"rule_id": c.rule_id, "action": c.action} for c in changes],
    )
    return JSONResponse(body.model_dump())


_PUT_BODY = {
    "required": True,
    "content": {
        "application/yaml": {"schema": {"type": "string"}},
        "application/json": {"schema": {"type": "object"}},
    },
}


@router.put(
    "",
    summary="Replace the rules file (validated, audited, hot-reloaded)",
    response_model=RulesChange,
    openapi_extra={"requestBody": _PUT_BODY},
    responses={
        422: {"description": "Invalid rules: every problem listed; the old rules stay"},
        503: {"description": "The audit could not be written; nothing changed"},
    },
)
async def put_rules(
    request: Request, caller: Annotated[Caller, Depends(require_role(Role.ADMIN))]
) -> JSONResponse:
    media = request.headers.get("content-type", "").split(";")[0].strip().lower()
    if media not in (*_YAML_TYPES, "application/json"):
        raise HTTPException(
            status_code=415, detail="send the rules as application/yaml or application/json"
        )
    raw = bytearray()
    async for chunk in request.stream():
        raw += chunk
        if len(raw) > MAX_RULES_FILE_CHARS * 4:
            raise HTTPException(status_code=413, detail="the rules file is too large")
    try:
        text = raw.decode("utf-8")
    except UnicodeDecodeError:
        return _invalid(request, [f"{_SOURCE}: not UTF-8 text"])
    async with _lock(request):
        return await _apply(request, caller, text)


@router.post(
    "",
    summary="Add one rule to the rules file (validated, audited, hot-reloaded)",
    response_model=RulesChange,
    responses={
        422: {"description": "Invalid rule: every problem listed; the old rules stay"},
        503: {"description": "The audit could not be written; nothing changed"},
    },
)
async def add_rule(
    request: Request,
    caller: Annotated[Caller, Depends(require_role(Role.ADMIN))],
    rule: Annotated[dict[str, Any], Body(description="One rule, as in the rules file")],
) -> JSONResponse:
    path = _path(request)
    async with _lock(request):
        try:
            current = await asyncio.to_thread(path.read_text, encoding="utf-8")
            data = yaml.safe_load(current) or {}
        except (OSError, UnicodeDecodeError, yaml.YAMLError) as exc:
            raise HTTPException(
                status_code=409, detail="the rules file on disk is unreadable; use PUT"
            ) from exc
        if not isinstance(data, dict):
            raise HTTPException(status_code=409, detail="the rules file on disk is not a mapping")
        rules = data.get("rules")
        data["rules"] = [*(rules if isinstance(rules, list) else []), rule]
        text = yaml.safe_dump(
            json.loads(json.dumps(data, default=str)), sort_keys=False, allow_unicode=True
        )
        return await _apply(request, caller, text)
