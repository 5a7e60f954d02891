"""Who holds an embedded store: an exclusive lock file held for the life of the process.

The embedded engine (chDB) admits one process per data path; a second one fails deep inside the
engine with an error that does not say why. So before opening a ``chdb://`` store the process
takes an exclusive, non-blocking ``flock`` on ``<store>/pwm-owner.json`` and keeps the file open
until it exits (the kernel releases the lock when the process dies, SIGKILL included, so a stale
file never blocks anyone). The file says who holds the store: the command, the pid and, once a
``serve`` process listens, the URL of its API (:meth:`StoreLock.announce`). A process that finds
the lock taken raises :class:`~stream_app.storage.errors.StoreInUse` naming the store, the
holder and what to do instead; the command line prints that one line and exits with code 2.
"""

from __future__ import annotations

import contextlib
import fcntl
import json
import os
import sys
import time
from pathlib import Path
from typing import Any

from stream_app.storage.errors import StoreInUse

__all__ = ["LOCK_FILE_NAME", "StoreLock", "holder_of", "name_process", "store_in_use"]

LOCK_FILE_NAME = "pwm-owner.json"


_process_command: str | None = None


def name_process(command: str) -> None:
    """Say what this process is (``proxywhirl-metrics serve``), for the lock file."""
    global _process_command
    _process_command = command


def _command_line() -> str:
    if _process_command is not None:
        return _process_command
    return os.path.basename(sys.argv[0]) if sys.argv and sys.argv[0] else "python"


def holder_of(store: Path) -> dict[str, Any]:
    """What the lock file of ``store`` says about its holder ({} when unreadable)."""
    try:
        doc = json.loads((store / LOCK_FILE_NAME).read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return {}
    return doc if isinstance(doc, dict) else {}


def store_in_use(store: Path, holder: dict[str, Any] | None = None) -> StoreInUse:
    """The error for ``store`` held by another process, with the advice for the user."""
    info = holder_of(store) if holder is None else holder
    pid = info.get("pid")
    command = info.get("command")
    url = info.get("url")
    who = "another process"
    if command or pid:
        who = f"'{command or 'a process'}'" + (f" (pid {pid})" if pid else "")
    if isinstance(url, str) and url:
        advice = f"query the running server's API at {url} instead (e.g. {url}/api/v1/summary)"
    else:
        advice = (
            "stop it, or run this command against the process that serves the store "
            "(proxywhirl-metrics serve) and query its API"
        )
    return StoreInUse(f"the store {store} is in use by {who}; {advice}", store=str(store))


class StoreLock:
    """The exclusive hold of one embedded store by this process."""

    def __init__(self, store: Path, fd: int) -> None:
        self.store = store
        self._fd = fd
        self._doc: dict[str, Any] = {}

    @classmethod
    def acquire(cls, store: Path) -> StoreLock:
        """Take the store or raise :class:`StoreInUse` (never waits)."""
        store.mkdir(parents=True, exist_ok=True)
        fd = os.open(store / LOCK_FILE_NAME, os.O_RDWR | os.O_CREAT | os.O_CLOEXEC, 0o644)
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            os.close(fd)
            raise store_in_use(store) from None
        except OSError:
            os.close(fd)
            raise
        lock = cls(store, fd)
        lock.announce(command=_command_line(), pid=os.getpid(), started_ms=time.time_ns() // 10**6)
        return lock

    def announce(self, **facts: Any) -> None:
        """Record facts about the holder (``url=...`` once it serves) in the lock file."""
        self._doc.update(facts)
        data = json.dumps(self._doc, sort_keys=True).encode()
        os.ftruncate(self._fd, 0)
        os.pwrite(self._fd, data, 0)

    def release(self) -> None:
        """Give the store up (process exit does this too)."""
        if self._fd < 0:
            return
        with contextlib.suppress(OSError):
            os.ftruncate(self._fd, 0)
            fcntl.flock(self._fd, fcntl.LOCK_UN)
        os.close(self._fd)
        self._fd = -1
