"""Free TCP ports on loopback and waiting until a port accepts connections."""

from __future__ import annotations

import socket
import time
from collections.abc import Callable

LOOPBACK = "127.0.0.1"


def free_port(host: str = LOOPBACK) -> int:
    """A port nobody listens on right now (the OS picks it; a race with others is possible)."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind((host, 0))
        port: int = sock.getsockname()[1]
        return port


def port_accepts(port: int, host: str = LOOPBACK, timeout_s: float = 0.5) -> bool:
    """Whether ``host:port`` accepts a TCP connection now."""
    try:
        with socket.create_connection((host, port), timeout=timeout_s):
            return True
    except OSError:
        return False


def wait_until(
    condition: Callable[[], bool],
    *,
    timeout_s: float,
    interval_s: float = 0.05,
    abort: Callable[[], str | None] | None = None,
) -> bool:
    """Poll ``condition`` until it holds (True) or ``timeout_s`` passes (False).

    ``abort`` is checked each round; a non-None result stops the wait early (returns False),
    for example when the process being waited on has exited.
    """
    deadline = time.monotonic() + timeout_s
    while True:
        if condition():
            return True
        if abort is not None and abort() is not None:
            return False
        if time.monotonic() >= deadline:
            return False
        time.sleep(interval_s)
