"""COPY batches into a table on a second thread, while the next batch is prepared.

An import is a pipeline with two busy ends: Python reads, validates and reprojects a
batch (GEOS, numpy and the TransDatRO grid release the GIL), and PostgreSQL parses and
stores the previous one. The writer thread encodes each batch (``gis_core.bulk``) and
streams it into one COPY statement that stays open across batches, so the target's
statement triggers run once for the whole load, not once a batch. At most one batch
waits in the queue, so memory stays bounded to about three batches.

A column may be given as a ``Future`` of its array (the ETRS89 twins, made on another
thread): the writer thread waits for it just before encoding, so the producer never does.

The connection belongs to the writer while the COPY is open: ``wait`` ends the COPY
(the next ``write`` opens another) before anything else runs on the connection. Errors
of the COPY surface at the next ``write``, ``wait`` or ``close``.
"""

from __future__ import annotations

import contextlib
import ctypes
import platform
import queue
import threading
from collections.abc import Mapping
from concurrent.futures import Future
from typing import Any

import psycopg
from sqlalchemy.engine import Connection

from gis_core.bulk import (
    COPY_SIGNATURE,
    COPY_TRAILER,
    ArrayLike,
    binary_copy_statement,
    database_error,
    describe,
    encode_rows,
    write_binary,
)

_END = object()
# glibc's mallopt parameters and the values an import sets (see ``keep_freed_memory``).
_M_TRIM_THRESHOLD = -1
_M_MMAP_THRESHOLD = -3
_MMAP_THRESHOLD = 32 * 2**20  # glibc's largest: buffers above it are still mapped apart
_TRIM_THRESHOLD = 2**30
_tuned: list[bool] = []


def keep_freed_memory() -> bool:
    """Let this process reuse the memory of the batches it frees instead of handing it
    back to the system at once (glibc only; once per process; True when set).

    Every batch allocates the same few dozen arrays of 0.1 to 20 MB. glibc maps each one
    apart and unmaps it when freed, so the next batch touches fresh pages: a million
    features cost ~350 000 page faults, a sixth of the import's CPU in a virtual machine.
    With the thresholds raised, freed arrays stay in the heap and the next batch's fit
    in them (peak memory is about the same: the batches in flight are bounded anyway).
    """
    if _tuned:
        return _tuned[0]
    done = False
    if platform.system() == "Linux" and platform.libc_ver()[0] == "glibc":
        with contextlib.suppress(OSError, AttributeError):
            libc = ctypes.CDLL("libc.so.6")
            done = bool(libc.mallopt(_M_MMAP_THRESHOLD, _MMAP_THRESHOLD)) and bool(
                libc.mallopt(_M_TRIM_THRESHOLD, _TRIM_THRESHOLD)
            )
    _tuned.append(done)
    return done


class StageWriter:
    """Writes column batches into ``table``'s ``columns`` with one binary COPY."""

    def __init__(self, conn: Connection, table: str, columns: list[str]) -> None:
        self.conn = conn
        self.table = table
        self.columns = list(columns)
        self._described = describe(conn, table, self.columns)
        self._queue: queue.Queue[Any] = queue.Queue(maxsize=1)
        self._thread: threading.Thread | None = None
        self._error: BaseException | None = None
        self.rows = 0

    def write(self, data: Mapping[str, ArrayLike], *, background: bool = True) -> None:
        """COPY one batch (``columns`` → arrays of equal length), in the background."""
        self._raise()
        arrays = [data[name] for name in self.columns]
        self.rows += len(arrays[0]) if arrays else 0
        if not background:
            self.wait()
            encoded = encode_rows(self._described, [_result(values) for values in arrays])
            write_binary(self.conn, self.table, self.columns, [encoded])
            return
        if self._thread is None:
            self._thread = threading.Thread(target=self._run, name="stage-copy", daemon=True)
            self._thread.start()
        self._queue.put(arrays)

    def _run(self) -> None:
        raw = self.conn.connection.dbapi_connection
        ended = False
        try:
            assert isinstance(raw, psycopg.Connection)
            statement = binary_copy_statement(self.table, self.columns)
            with raw.cursor() as cursor, cursor.copy(statement) as copy:
                copy.write(COPY_SIGNATURE)
                while True:
                    arrays = self._queue.get()
                    if arrays is _END:
                        ended = True
                        break
                    values = [_result(column) for column in arrays]
                    copy.write(encode_rows(self._described, values))
                copy.write(COPY_TRAILER)
        except BaseException as exc:  # handed to the main thread
            self._error = database_error(self.table, exc) if isinstance(exc, psycopg.Error) else exc
            while not ended:  # let the producer finish
                ended = self._queue.get() is _END

    def wait(self) -> None:
        """End the COPY in flight (the target's statement triggers run now)."""
        thread, self._thread = self._thread, None
        if thread is not None:
            self._queue.put(_END)
            thread.join()
        self._raise()

    def close(self) -> None:
        self.wait()

    def abandon(self) -> None:
        """After a failure elsewhere: end the COPY, ignoring its outcome (the transaction
        is rolled back anyway), so the connection is free for the rollback."""
        with contextlib.suppress(BaseException):  # the first error is the one reported
            self.wait()

    def _raise(self) -> None:
        error, self._error = self._error, None
        if error is not None:
            raise error


def _result(values: Any) -> Any:
    return values.result() if isinstance(values, Future) else values


def resolved(data: Mapping[str, Any]) -> dict[str, Any]:
    """``data`` with every ``Future`` column replaced by its array (waiting for it)."""
    return {name: _result(values) for name, values in data.items()}
