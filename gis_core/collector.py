"""Pausing Python's cyclic garbage collector for bulk work.

Bulk work (an import, the demo load, a coordinate file) makes millions of small objects
(geometries, arrays of them, strings) that reference counting frees as soon as they go;
it makes no reference cycles worth collecting. The cyclic collector, though, counts the
allocations and every so often walks every live tracked object, and the live set of a
bulk job is large: a million-parcel import ran eleven full collections that found
nothing and cost a tenth of its CPU time. Pausing the collector for the job's length
saves that; the few cycles made meanwhile are collected once it resumes.
"""

from __future__ import annotations

import gc
import threading
from collections.abc import Iterator
from contextlib import contextmanager

_lock = threading.Lock()
_holders = 0  # jobs running with the collector paused (threads of one server, say)
_resume = False  # whether the collector was on when the first of them paused it


@contextmanager
def collector_paused() -> Iterator[None]:
    """Run the block with the cyclic collector paused; it resumes when the last block
    running (in any thread) ends, if it was on before the first one began."""
    global _holders, _resume
    with _lock:
        if _holders == 0:
            _resume = gc.isenabled()
            gc.disable()
        _holders += 1
    try:
        yield
    finally:
        with _lock:
            _holders -= 1
            if _holders == 0 and _resume:
                gc.enable()
