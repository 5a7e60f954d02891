"""The on-disk spool: FIFO by sequence, bounded (oldest dropped and counted), crash-safe."""

from __future__ import annotations

import signal
import subprocess
import sys
from pathlib import Path

import pytest

from producer import SpoolError
from producer.spool import Spool


def _spool(path: Path | str, **kw: int) -> Spool:
    return Spool(path, max_bytes=kw.get("max_bytes", 1 << 20), max_rows=kw.get("max_rows", 1000))


def test_fifo_by_sequence_even_when_inserted_out_of_order(tmp_path: Path) -> None:
    spool = _spool(tmp_path / "s.sqlite3")
    for seq in (3, 1, 2, 5, 4):
        assert spool.append(seq, f"pool-{seq % 2}", f"payload-{seq}".encode(), seq * 10)
    assert [e.seq for e in spool.peek(10)] == [1, 2, 3, 4, 5]
    assert [e.seq for e in spool.peek(2)] == [1, 2]
    assert (spool.rows, spool.events, spool.last_seq) == (5, 150, 5)
    spool.remove([1, 2, 99])
    first = spool.peek(1)[0]
    assert (first.seq, first.pool, first.payload, first.event_count) == (
        3,
        "pool-1",
        b"payload-3",
        30,
    )
    assert (spool.rows, spool.events) == (3, 120)
    assert spool.size_bytes == sum(len(e.payload) for e in spool.peek(10))
    spool.close()


def test_row_bound_drops_the_oldest_and_counts_them(tmp_path: Path) -> None:
    spool = _spool(tmp_path / "s.sqlite3", max_rows=4)
    for seq in range(1, 11):
        spool.append(seq, "p", b"x" * 10, 7)
    assert [e.seq for e in spool.peek(100)] == [7, 8, 9, 10]
    assert (spool.dropped_rows, spool.dropped_events) == (6, 42)
    assert (spool.rows, spool.events) == (4, 28)
    spool.close()


def test_byte_bound_drops_the_oldest_and_an_oversized_envelope_is_refused(tmp_path: Path) -> None:
    spool = _spool(tmp_path / "s.sqlite3", max_bytes=1000)
    for seq in range(1, 6):
        spool.append(seq, "p", bytes(300), 1)
    assert [e.seq for e in spool.peek(100)] == [3, 4, 5]
    assert spool.size_bytes == 900
    assert spool.dropped_rows == 2
    assert not spool.append(6, "p", bytes(1001), 50)
    assert [e.seq for e in spool.peek(100)] == [3, 4, 5]
    assert (spool.dropped_rows, spool.dropped_events) == (3, 52)
    spool.close()


def test_reopening_keeps_rows_totals_and_order(tmp_path: Path) -> None:
    path = tmp_path / "s.sqlite3"
    spool = _spool(path)
    for seq in range(1, 4):
        spool.append(seq, "p", b"abc", 2)
    spool.close()
    again = _spool(path)
    assert (again.rows, again.events, again.size_bytes, again.last_seq) == (3, 6, 9, 3)
    assert [e.seq for e in again.peek(10)] == [1, 2, 3]
    again.close()


def test_rows_survive_a_killed_writer(tmp_path: Path) -> None:
    path = tmp_path / "crash.sqlite3"
    code = (
        "import os, sys, signal\n"
        "from producer.spool import Spool\n"
        "s = Spool(sys.argv[1], max_bytes=1 << 20, max_rows=1000)\n"
        "for seq in range(1, 51):\n"
        "    s.append(seq, 'pool-a', b'envelope-%d' % seq, seq)\n"
        "os.kill(os.getpid(), signal.SIGKILL)\n"
    )
    done = subprocess.run([sys.executable, "-c", code, str(path)], timeout=60, check=False)
    assert done.returncode == -signal.SIGKILL
    spool = _spool(path)
    entries = spool.peek(100)
    assert [e.seq for e in entries] == list(range(1, 51))
    assert entries[-1].payload == b"envelope-50"
    assert spool.events == sum(range(1, 51))
    spool.close()


def test_memory_spool_works_without_a_file() -> None:
    spool = _spool(":memory:", max_rows=2)
    for seq in range(1, 4):
        spool.append(seq, "p", b"x", 1)
    assert [e.seq for e in spool.peek(5)] == [2, 3]
    spool.close()


def test_sqlite_errors_are_translated(tmp_path: Path) -> None:
    with pytest.raises(SpoolError, match="cannot open spool"):
        _spool(tmp_path)  # a directory, not a database file
    spool = _spool(tmp_path / "s.sqlite3")
    spool.append(1, "p", b"x", 1)
    with pytest.raises(SpoolError):
        spool.append(1, "p", b"y", 1)  # the same sequence number twice
    assert spool.rows == 1
    spool.close()
