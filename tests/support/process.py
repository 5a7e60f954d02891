"""A service run as a child process: output to a log file, SIGTERM then SIGKILL to stop it.

Children are started in their own session (Ctrl-C reaches pytest only, which stops them in
order) and, when started from the main thread, with ``PR_SET_PDEATHSIG`` so they die with the
test process even if it is killed; an ``atexit`` hook stops any that are still running.
"""

from __future__ import annotations

import atexit
import contextlib
import ctypes
import ctypes.util
import logging
import os
import signal
import subprocess
import threading
import time
import weakref
from collections.abc import Callable, Mapping, Sequence
from pathlib import Path

from .errors import HarnessStartError, HarnessStopError

logger = logging.getLogger(__name__)

_PR_SET_PDEATHSIG = 1
_KILL_WAIT_S = 10.0
_live: weakref.WeakSet[ManagedProcess] = weakref.WeakSet()


def _load_prctl() -> Callable[[int, int], int] | None:
    name = ctypes.util.find_library("c")
    if name is None:
        return None
    try:
        libc = ctypes.CDLL(name, use_errno=True)
    except OSError:
        return None
    prctl: Callable[[int, int], int] = libc.prctl
    return prctl


_prctl = _load_prctl()


def _die_with_parent() -> None:  # runs in the child between fork and exec
    if _prctl is not None:
        _prctl(_PR_SET_PDEATHSIG, signal.SIGKILL)


class ManagedProcess:
    """One run of a program; ``start()`` may be called again after it has exited."""

    def __init__(
        self,
        name: str,
        argv: Sequence[str],
        *,
        log_path: Path,
        cwd: Path | None = None,
        env: Mapping[str, str] | None = None,
    ) -> None:
        self.name = name
        self.argv = list(argv)
        self.log_path = log_path
        self.cwd = cwd
        self.env = dict(env) if env is not None else None
        self._proc: subprocess.Popen[bytes] | None = None

    @property
    def pid(self) -> int | None:
        return self._proc.pid if self._proc is not None else None

    @property
    def running(self) -> bool:
        return self._proc is not None and self._proc.poll() is None

    @property
    def returncode(self) -> int | None:
        return self._proc.poll() if self._proc is not None else None

    def start(self) -> None:
        """Spawn the program; its stdout and stderr are appended to ``log_path``."""
        if self.running:
            raise HarnessStartError(f"{self.name} is already running (pid {self.pid})")
        self.log_path.parent.mkdir(parents=True, exist_ok=True)
        main_thread = threading.current_thread() is threading.main_thread()
        with self.log_path.open("ab") as log:
            log.write(f"--- {time.strftime('%H:%M:%S')} starting {self.name}\n".encode())
            log.flush()
            try:
                self._proc = subprocess.Popen(
                    self.argv,
                    stdin=subprocess.DEVNULL,
                    stdout=log,
                    stderr=subprocess.STDOUT,
                    cwd=self.cwd,
                    env=self.env,
                    start_new_session=True,
                    # The death signal follows the spawning *thread*: only safe from the main one.
                    preexec_fn=_die_with_parent if main_thread else None,
                )
            except OSError as exc:
                raise HarnessStartError(f"cannot run {self.argv[0]}: {exc}") from exc
        _live.add(self)
        logger.debug("started %s pid=%d", self.name, self._proc.pid)

    def exit_reason(self) -> str | None:
        """None while running; otherwise a sentence saying how it ended."""
        code = self.returncode
        if self._proc is None:
            return f"{self.name} was never started"
        if code is None:
            return None
        return f"{self.name} exited with code {code}"

    def wait(self, timeout_s: float) -> int | None:
        """Wait up to ``timeout_s`` for the process to exit; its return code, or None."""
        if self._proc is None:
            return None
        try:
            return self._proc.wait(timeout=timeout_s)
        except subprocess.TimeoutExpired:
            return None

    def terminate(self, timeout_s: float) -> int | None:
        """SIGTERM, wait ``timeout_s``, then SIGKILL. The return code (None if never started)."""
        if self._proc is None:
            return None
        if self._proc.poll() is None:
            with contextlib.suppress(ProcessLookupError):
                self._proc.send_signal(signal.SIGTERM)
            code = self.wait(timeout_s)
            if code is not None:
                return code
            logger.warning("%s ignored SIGTERM for %.0f s; killing it", self.name, timeout_s)
        return self.kill()

    def kill(self) -> int | None:
        """SIGKILL and reap. The return code (None if never started)."""
        if self._proc is None:
            return None
        if self._proc.poll() is None:
            with contextlib.suppress(ProcessLookupError):
                self._proc.kill()
        code = self.wait(_KILL_WAIT_S)
        if code is None:
            raise HarnessStopError(f"{self.name} (pid {self._proc.pid}) survived SIGKILL")
        return code

    def log_tail(self, max_lines: int = 40) -> str:
        """The last lines of the log file (for error messages)."""
        return tail(self.log_path, max_lines)


def tail(path: Path, max_lines: int = 40) -> str:
    """The last ``max_lines`` lines of a text file, or a note if it does not exist."""
    try:
        with path.open("rb") as handle:
            handle.seek(0, os.SEEK_END)
            size = handle.tell()
            handle.seek(max(0, size - 64 * 1024))
            data = handle.read()
    except FileNotFoundError:
        return f"(no {path})"
    lines = data.decode("utf-8", errors="replace").splitlines()
    return "\n".join(lines[-max_lines:])


@atexit.register
def _stop_leftovers() -> None:
    for proc in list(_live):
        if proc.running:
            logger.warning("stopping leftover %s at exit", proc.name)
            with contextlib.suppress(HarnessStopError):
                proc.terminate(5.0)
