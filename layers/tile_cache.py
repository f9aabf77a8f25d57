"""Tile cache: an in-process LRU bounded in bytes, plus an optional disk cache.

Keys carry the data version of every layer in the tile (``core.data_version``), so an
import or an edit makes old entries unreachable at once: nothing has to be purged by
hand, and stale entries simply age out of the LRU. The role is part of the key because
different roles see different fields and rows.
"""

from __future__ import annotations

import hashlib
import os
import threading
from collections import OrderedDict
from dataclasses import dataclass
from pathlib import Path


@dataclass(frozen=True)
class TileKey:
    role: str
    layers: str
    version: str
    z: int
    x: int
    y: int

    def etag(self) -> str:
        """A strong ETag (unquoted) derived from the key alone: a 304 needs no rendering."""
        return hashlib.sha1(repr(self).encode(), usedforsecurity=False).hexdigest()[:20]

    def relative_path(self) -> Path:
        safe_layers = self.layers.replace(",", "+")
        return Path(self.role, safe_layers, self.version, str(self.z), str(self.x), f"{self.y}.mvt")


class TileCache:
    """Thread-safe LRU of tile bytes; ``disk_dir`` adds a second level that survives restarts."""

    def __init__(self, max_bytes: int = 64 * 1024 * 1024, disk_dir: Path | None = None) -> None:
        self.max_bytes = max_bytes
        self.disk_dir = disk_dir
        self._entries: OrderedDict[TileKey, bytes] = OrderedDict()
        self._size = 0
        self._lock = threading.Lock()
        self.hits = 0
        self.misses = 0

    def get(self, key: TileKey, *, count_miss: bool = True) -> bytes | None:
        """The tile's bytes from memory, else from disk, else None. ``count_miss=False``
        for a look-up that falls back to a full request counting its own miss."""
        with self._lock:
            data = self._entries.get(key)
            if data is not None:
                self._entries.move_to_end(key)
                self.hits += 1
                return data
        data = self._read_disk(key)
        if data is not None:
            self._remember(key, data)
            self.hits += 1
            return data
        if count_miss:
            self.misses += 1
        return None

    def put(self, key: TileKey, data: bytes) -> None:
        self._remember(key, data)
        self._write_disk(key, data)

    def clear(self) -> None:
        with self._lock:
            self._entries.clear()
            self._size = 0

    def _remember(self, key: TileKey, data: bytes) -> None:
        if len(data) > self.max_bytes:
            return
        with self._lock:
            old = self._entries.pop(key, None)
            if old is not None:
                self._size -= len(old)
            self._entries[key] = data
            self._size += len(data)
            while self._size > self.max_bytes and self._entries:
                _, evicted = self._entries.popitem(last=False)
                self._size -= len(evicted)

    def _read_disk(self, key: TileKey) -> bytes | None:
        if self.disk_dir is None:
            return None
        path = self.disk_dir / key.relative_path()
        try:
            return path.read_bytes()
        except OSError:
            return None

    def _write_disk(self, key: TileKey, data: bytes) -> None:
        """Write through a temporary file and rename, so readers never see half a tile."""
        if self.disk_dir is None:
            return
        path = self.disk_dir / key.relative_path()
        path.parent.mkdir(parents=True, exist_ok=True)
        temporary = path.with_suffix(f".{os.getpid()}.{threading.get_ident()}.tmp")
        temporary.write_bytes(data)
        temporary.replace(path)
