"""The provenance store: one SQLite row per signed render, so a stripped file can be traced back.

A render is found again by its watermark payload (survives re-encoding and screenshots) — the full
64-bit payload, or on small images the 32-bit short store index the watermark carries instead (its low
32 bits, column ``short_id``) — by the SHA-256 of the signed file (exact copies), or, as a hint only,
by a perceptual hash of its first frame. Safe for several processes (WAL journal, busy timeout);
re-recording the same signed file (same sha256 + path) replaces its row, so an interrupted corpus
render can simply run again.
"""

from __future__ import annotations

import contextlib
import json
import os
import sqlite3
import time
from pathlib import Path
from typing import Any, Iterator

from core.common import FaceforgeError

SCHEMA_VERSION = 2  # 2: short_id (low 32 bits of the payload), filled in on open for older stores
SHORT_BITS = 32         # a short watermark payload: the low 32 bits of the render's payload
LOCK_RETRIES = 40       # ~40 s of retries when another process holds the store's write lock
PHASH_HINT_DISTANCE = 6  # Hamming distance (of 64 bits) under which a pHash match is reported as a hint
_SCHEMA = """
CREATE TABLE IF NOT EXISTS renders (
    id INTEGER PRIMARY KEY AUTOINCREMENT,
    payload TEXT,                -- 16 hex digits, NULL when not watermarked
    short_id INTEGER,            -- payload & 0xffffffff: what a short (small-image) watermark carries
    sha256 TEXT NOT NULL,        -- of the signed file
    phash TEXT,                  -- imagehash.phash of the first frame, 16 hex digits
    path TEXT NOT NULL,
    mime TEXT,
    manifest_label TEXT,
    manifest_json TEXT,          -- the active manifest as c2pa reports it
    generation_json TEXT,
    actions TEXT,
    ingredients TEXT,
    created_at REAL NOT NULL,
    UNIQUE (sha256, path)
);
CREATE INDEX IF NOT EXISTS renders_payload ON renders (payload);
CREATE INDEX IF NOT EXISTS renders_sha256 ON renders (sha256);
CREATE TABLE IF NOT EXISTS meta (key TEXT PRIMARY KEY, value TEXT);
"""
_COLUMNS = ("payload", "short_id", "sha256", "phash", "path", "mime", "manifest_label", "manifest_json",
            "generation_json", "actions", "ingredients", "created_at")


def _retry_locked(fn, attempts: int = LOCK_RETRIES):
    """Run ``fn``; retry while SQLite says the database is locked (a statement that cannot wait on the
    busy handler, e.g. a journal-mode switch while another shard writes)."""
    for i in range(attempts):
        try:
            return fn()
        except sqlite3.OperationalError as e:
            if "locked" not in str(e) or i == attempts - 1:
                raise
            time.sleep(0.05 * (i + 1))


def payload_hex(payload: int | None) -> str | None:
    return None if payload is None else f"{int(payload) & ((1 << 64) - 1):016x}"


def short_id(payload: int) -> int:
    """The 32-bit store index a small image's watermark carries: the payload's low 32 bits."""
    return int(payload) & ((1 << SHORT_BITS) - 1)


class Store:
    """SQLite record of every signed render. ``Store(path)``; also a context manager."""

    def __init__(self, sqlite_path: str | os.PathLike):
        self.path = Path(sqlite_path)
        self.path.parent.mkdir(parents=True, exist_ok=True)
        try:
            self._db = sqlite3.connect(str(self.path), timeout=30.0, check_same_thread=False)
            self._db.row_factory = sqlite3.Row
            _retry_locked(self._open_schema)
        except sqlite3.DatabaseError as e:
            raise FaceforgeError(f"provenance store {self.path} is not usable: {e}") from None

    def _open_schema(self) -> None:
        # Several shards may open one store at once: switching to WAL needs the write lock, so only the
        # first opener does it, and a busy store is retried (see _retry_locked) instead of failing.
        if str(self._db.execute("PRAGMA journal_mode").fetchone()[0]).lower() != "wal":
            self._db.execute("PRAGMA journal_mode=WAL")
        self._db.executescript(_SCHEMA)
        self._migrate()
        self._db.execute("INSERT OR REPLACE INTO meta VALUES ('schema_version', ?)", (str(SCHEMA_VERSION),))
        self._db.commit()

    def _migrate(self) -> None:
        """Version 1 stores have no short_id column: add it and fill it from the payloads."""
        cols = {r[1] for r in self._db.execute("PRAGMA table_info(renders)")}
        if "short_id" not in cols:
            self._db.execute("ALTER TABLE renders ADD COLUMN short_id INTEGER")
        rows = self._db.execute("SELECT id, payload FROM renders WHERE payload IS NOT NULL AND short_id IS NULL")
        self._db.executemany("UPDATE renders SET short_id = ? WHERE id = ?",
                             [(short_id(int(p, 16)), rid) for rid, p in rows.fetchall()])
        self._db.execute("CREATE INDEX IF NOT EXISTS renders_short_id ON renders (short_id)")

    def __enter__(self) -> "Store":
        return self

    def __exit__(self, *exc) -> None:
        self.close()

    def __repr__(self) -> str:
        return f"Store({str(self.path)!r})"

    def close(self) -> None:
        self._db.close()

    def __len__(self) -> int:
        return int(self._db.execute("SELECT COUNT(*) FROM renders").fetchone()[0])

    def record(self, *, sha256: str, path: str, payload: int | None = None, phash: str | None = None,
               mime: str | None = None, manifest_label: str | None = None,
               manifest: dict | None = None, generation: dict | None = None,
               actions: list[str] | tuple[str, ...] = (), ingredients: list[str] | tuple[str, ...] = ()) -> int:
        """Insert (or replace) one render; returns its row id."""
        row = (payload_hex(payload), None if payload is None else short_id(payload), sha256, phash, str(path),
               mime, manifest_label,
               json.dumps(manifest, default=str) if manifest is not None else None,
               json.dumps(generation, default=str) if generation is not None else None,
               json.dumps(list(actions)), json.dumps([str(i) for i in ingredients]), time.time())
        def insert():
            with self._db:
                return self._db.execute(
                    f"INSERT OR REPLACE INTO renders ({', '.join(_COLUMNS)}) VALUES ({', '.join('?' * len(_COLUMNS))})",
                    row)
        return int(_retry_locked(insert).lastrowid)

    def forget(self, path: str | os.PathLike) -> int:
        """Drop every record of ``path`` (a file about to be re-rendered in place, e.g. a corpus job resumed
        after a kill: its earlier signed copy was never published); returns how many went."""
        with self._db:
            cur = self._db.execute("DELETE FROM renders WHERE path = ?", (str(path),))
        return int(cur.rowcount)

    def _rows(self, sql: str, args: tuple) -> list[dict[str, Any]]:
        out = []
        for r in self._db.execute(sql, args).fetchall():
            d = dict(r)
            for key in ("manifest_json", "generation_json", "actions", "ingredients"):
                d[key.removesuffix("_json")] = json.loads(d.pop(key)) if d.get(key) else None
            out.append(d)
        return out

    def by_payload(self, payload: int, bits: int = 64) -> list[dict[str, Any]]:
        """Renders carrying this watermark payload (``bits=32``: this short store index), the original
        (created) render first."""
        if bits == SHORT_BITS:
            rows = self._rows("SELECT * FROM renders WHERE short_id = ? ORDER BY id", (short_id(payload),))
        elif bits == 64:
            rows = self._rows("SELECT * FROM renders WHERE payload = ? ORDER BY id", (payload_hex(payload),))
        else:
            raise FaceforgeError(f"watermark payloads are 64 or {SHORT_BITS} bits, not {bits}")
        return sorted(rows, key=lambda r: "created" not in (r.get("actions") or []))

    def short_id_taken(self, short: int) -> bool:
        """Whether a recorded render already carries this 32-bit short id (new payloads avoid it)."""
        return self._db.execute("SELECT 1 FROM renders WHERE short_id = ? LIMIT 1",
                                (short_id(short),)).fetchone() is not None

    def payloads(self) -> list[int]:
        """Every distinct watermark payload recorded (the candidates of a store-assisted decode)."""
        return [int(r[0], 16) for r in
                self._db.execute("SELECT DISTINCT payload FROM renders WHERE payload IS NOT NULL")]

    def by_sha256(self, sha256: str) -> list[dict[str, Any]]:
        return self._rows("SELECT * FROM renders WHERE sha256 = ? ORDER BY id", (sha256,))

    def near_phash(self, phash: str, max_distance: int = PHASH_HINT_DISTANCE, limit: int = 5) -> list[dict[str, Any]]:
        """Renders whose first-frame pHash is within ``max_distance`` bits (a hint, not a proof)."""
        target = int(phash, 16)
        hits = []
        for rid, ph in self._db.execute("SELECT id, phash FROM renders WHERE phash IS NOT NULL"):
            dist = bin(target ^ int(ph, 16)).count("1")
            if dist <= max_distance:
                hits.append((dist, rid))
        hits.sort()
        out = []
        for dist, rid in hits[:limit]:
            row = self._rows("SELECT * FROM renders WHERE id = ?", (rid,))[0]
            row["phash_distance"] = dist
            out.append(row)
        return out


@contextlib.contextmanager
def open_store(store: Store | str | os.PathLike) -> Iterator[Store]:
    """Use a Store as given, or open (and close) one from a path."""
    if isinstance(store, Store):
        yield store
    else:
        with Store(store) as st:
            yield st
