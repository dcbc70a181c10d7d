"""The sandbox's state: in-memory tables written through to one SQLite file.

Reads never touch SQLite (that keeps handlers cheap); a change is written at once, or, inside
`batch()` (a request, a run of the engine's timers), when the batch ends, so the state survives a
restart. Each record is a JSON document; keys starting with "_" are internal and never
rendered.
"""

import contextlib
import json
import sqlite3
from pathlib import Path

KINDS = (
    "company",
    "connection",
    "dataset",
    "read",
    "push",
    "consumer",
    "message",
    "product",
    "source_account",
    "meta",
)
# Records looked up by their company, indexed so that one company's lookup does not scan every
# company's records (a sandbox re-reading thousands of companies on schedules does it constantly).
OWNER_FIELD = {"connection": "_companyId", "dataset": "companyId"}


class Store:
    def __init__(self, state_dir: Path):
        state_dir.mkdir(parents=True, exist_ok=True)
        self.path = state_dir / "sandbox.sqlite3"
        # The event loop is the only writer; autocommit plus WAL keeps each write cheap.
        self._db = sqlite3.connect(self.path, isolation_level=None, check_same_thread=False)
        self._db.execute("PRAGMA journal_mode=WAL")
        self._db.execute("PRAGMA synchronous=NORMAL")
        self._db.execute(
            "CREATE TABLE IF NOT EXISTS records ("
            " kind TEXT NOT NULL, id TEXT NOT NULL, body TEXT NOT NULL, PRIMARY KEY (kind, id))"
        )
        self.tables: dict[str, dict[str, dict]] = {kind: {} for kind in KINDS}
        # Inside batch(): the records changed, written once each when the batch ends.
        self._dirty: dict[tuple[str, str], None] | None = None
        self._owned: dict[str, dict[str, dict[str, None]]] = {kind: {} for kind in OWNER_FIELD}
        for kind, record_id, body in self._db.execute("SELECT kind, id, body FROM records"):
            if kind in self.tables:
                self.tables[kind][record_id] = json.loads(body)
                self._own(kind, record_id, self.tables[kind][record_id])

    def _own(self, kind: str, record_id: str, body: dict) -> None:
        if kind in OWNER_FIELD:
            owner = body.get(OWNER_FIELD[kind])
            self._owned[kind].setdefault(owner, {})[record_id] = None

    def owned_by(self, kind: str, owner_id: str) -> list[dict]:
        """The `kind` records of one company (connections or datasets), in no set order."""
        table = self.tables[kind]
        return [table[i] for i in self._owned[kind].get(owner_id, ()) if i in table]

    @contextlib.contextmanager
    def batch(self):
        """Write the records changed inside once each, in one SQLite transaction, when it ends.

        The engine firing thousands of timers in one clock advance changes each dataset five
        times and its company at every read's end; written one by one, that was most of the
        time an advance took."""
        if self._dirty is not None:
            yield
            return
        self._dirty = {}
        try:
            yield
        finally:
            dirty, self._dirty = self._dirty, None
            rows = []
            for kind, record_id in dirty:
                body = self.tables[kind].get(record_id)
                if body is not None:
                    rows.append((kind, record_id, json.dumps(body, separators=(",", ":"))))
            self._db.execute("BEGIN")
            try:
                self._db.executemany(
                    "INSERT OR REPLACE INTO records (kind, id, body) VALUES (?, ?, ?)", rows
                )
            finally:
                self._db.execute("COMMIT")

    def get(self, kind: str, record_id: str) -> dict | None:
        return self.tables[kind].get(record_id)

    def all(self, kind: str) -> list[dict]:
        return list(self.tables[kind].values())

    def put(self, kind: str, record_id: str, body: dict) -> dict:
        self.tables[kind][record_id] = body
        self._own(kind, record_id, body)
        if self._dirty is not None:
            self._dirty[(kind, record_id)] = None
            return body
        self._db.execute(
            "INSERT OR REPLACE INTO records (kind, id, body) VALUES (?, ?, ?)",
            (kind, record_id, json.dumps(body, separators=(",", ":"))),
        )
        return body

    def delete(self, kind: str, record_id: str) -> None:
        body = self.tables[kind].pop(record_id, None)
        if body is not None and kind in OWNER_FIELD:
            self._owned[kind].get(body.get(OWNER_FIELD[kind]), {}).pop(record_id, None)
        if self._dirty is not None:
            self._dirty.pop((kind, record_id), None)
        self._db.execute("DELETE FROM records WHERE kind = ? AND id = ?", (kind, record_id))

    def clear(self) -> None:
        for table in self.tables.values():
            table.clear()
        for owned in self._owned.values():
            owned.clear()
        if self._dirty is not None:
            self._dirty.clear()
        self._db.execute("DELETE FROM records")

    def close(self) -> None:
        self._db.close()


def public(record: dict) -> dict:
    """The record as Codat renders it: internal keys dropped, and nulls left out.

    Codat's documents are OpenAPI 3.1, where `nullable: true` means nothing, so a null would not
    validate against `type: string`; an absent field always does.
    """
    return {key: value for key, value in record.items() if key[0] != "_" and value is not None}
