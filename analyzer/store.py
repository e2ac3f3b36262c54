"""The embedded store: one SQLite file holding every analysed call (its full result, and its speakers, turns, flags,
timelines and metrics as tables to query), the files that failed, and the provenance of each run.

A call is keyed by the sha256 of its audio. Each call is written in one transaction, so a process killed at any
moment leaves every call either complete or absent. One process writes (the batch runner); readers (exports,
the web app) may read at the same time (WAL journal).
"""

from __future__ import annotations

import json
import socket
import sqlite3
from collections.abc import Iterator
from contextlib import contextmanager
from datetime import datetime, timezone
from pathlib import Path

from .result import CallResult

STORE_VERSION = 2
PRIORITY_RANK = {"urgent": 4, "high": 3, "medium": 2, "low": 1, "none": 0}
METADATA_COLUMNS = ("collector_id", "borrower_id", "started_at", "direction")

_SCHEMA = """
CREATE TABLE runs (
    run_id INTEGER PRIMARY KEY,
    started_at TEXT NOT NULL,
    finished_at TEXT,                   -- NULL: the run was stopped before its end
    analyzer_version TEXT NOT NULL,
    command TEXT,
    host TEXT,
    engine TEXT,
    workers INTEGER,
    models TEXT,                        -- JSON, as the workers loaded them
    params TEXT,                        -- JSON, the settings that shape results
    analyzed INTEGER NOT NULL DEFAULT 0,
    skipped INTEGER NOT NULL DEFAULT 0,
    failed INTEGER NOT NULL DEFAULT 0
);
CREATE TABLE calls (
    call_id TEXT PRIMARY KEY,
    audio_sha256 TEXT NOT NULL UNIQUE,
    path TEXT NOT NULL,
    duration_s REAL NOT NULL,
    sample_rate INTEGER,
    channels INTEGER,
    layout TEXT,                        -- stereo (a channel per party) or mono (speakers found by voice)
    collector_id TEXT,
    borrower_id TEXT,
    started_at TEXT,                    -- ISO 8601, local time, from the manifest
    direction TEXT,
    metadata TEXT NOT NULL,             -- JSON: every manifest column
    risk REAL NOT NULL,
    review_priority TEXT NOT NULL,
    priority_rank INTEGER NOT NULL,     -- urgent 4 … none 0, to sort the review queue
    turns INTEGER NOT NULL,
    flags INTEGER NOT NULL,
    flag_categories TEXT NOT NULL,      -- comma-separated, sorted
    overlap_s REAL,
    silence_s REAL,
    interruptions INTEGER,
    collector_pressure_max REAL,
    borrower_stress_max REAL,
    errors INTEGER NOT NULL,            -- problems met that did not stop the analysis (see `result`)
    fingerprint TEXT NOT NULL,          -- analyzer version, models, settings and metadata that made the result
    run_id INTEGER REFERENCES runs,
    analyzed_at TEXT NOT NULL,
    result TEXT NOT NULL                -- the per-call JSON (CallResult)
);
CREATE INDEX calls_queue ON calls (priority_rank DESC, risk DESC);
CREATE INDEX calls_borrower ON calls (borrower_id, started_at);
CREATE INDEX calls_collector ON calls (collector_id, started_at);
CREATE TABLE speakers (
    call_id TEXT NOT NULL REFERENCES calls ON DELETE CASCADE,
    speaker TEXT NOT NULL,
    role TEXT NOT NULL,
    channel INTEGER,
    talk_time_s REAL,
    role_confidence REAL,
    PRIMARY KEY (call_id, speaker)
);
CREATE TABLE turns (
    call_id TEXT NOT NULL REFERENCES calls ON DELETE CASCADE,
    turn INTEGER NOT NULL,
    start_s REAL NOT NULL,
    end_s REAL NOT NULL,
    speaker TEXT NOT NULL,
    role TEXT NOT NULL,
    text TEXT NOT NULL,
    emotion TEXT,
    sentiment REAL,
    offensive REAL,
    act TEXT,                           -- the most likely tactic or state, when likely (Turn.top_act)
    arousal REAL,
    pressure REAL,
    stress REAL,
    scores TEXT NOT NULL,               -- JSON: {"emotion": {...}, "acts": {...}}
    PRIMARY KEY (call_id, turn)
);
CREATE TABLE flags (
    call_id TEXT NOT NULL REFERENCES calls ON DELETE CASCADE,
    flag INTEGER NOT NULL,
    rule TEXT NOT NULL,
    rule_version TEXT NOT NULL,
    category TEXT NOT NULL,
    severity TEXT NOT NULL,
    start_s REAL NOT NULL,
    end_s REAL NOT NULL,
    role TEXT NOT NULL,
    speaker TEXT,
    turn INTEGER,
    evidence TEXT NOT NULL,
    confidence REAL NOT NULL,
    PRIMARY KEY (call_id, flag)
);
CREATE INDEX flags_category ON flags (category);
CREATE TABLE timelines (
    call_id TEXT NOT NULL REFERENCES calls ON DELETE CASCADE,
    t REAL NOT NULL,
    collector_pressure REAL,
    borrower_stress REAL,
    emotion TEXT NOT NULL,              -- JSON: {role: {label: value}}
    PRIMARY KEY (call_id, t)
);
CREATE TABLE metrics (
    call_id TEXT NOT NULL REFERENCES calls ON DELETE CASCADE,
    speaker TEXT NOT NULL,
    role TEXT NOT NULL,
    talk_time_s REAL,
    talk_share REAL,
    speech_rate_cps REAL,
    turns INTEGER,
    interruptions_made INTEGER,
    interrupted INTEGER,
    response_latency_s REAL,
    responses INTEGER,
    PRIMARY KEY (call_id, speaker)
);
CREATE TABLE failures (
    failure_id INTEGER PRIMARY KEY,
    run_id INTEGER REFERENCES runs,
    path TEXT NOT NULL,
    audio_sha256 TEXT,
    call_id TEXT,
    error TEXT NOT NULL,
    at TEXT NOT NULL
);
CREATE TABLE known_files (              -- saves hashing an unchanged file again on the next run
    path TEXT PRIMARY KEY,
    size INTEGER NOT NULL,
    mtime_ns INTEGER NOT NULL,
    audio_sha256 TEXT NOT NULL
);
"""

# what each store version adds to the one before; a store is brought up to date when it is opened for writing
_MIGRATIONS = {
    2: """
CREATE TABLE reviews (                  -- reviewers' decisions on flags: every decision kept, the latest counts
    review_id INTEGER PRIMARY KEY,
    call_id TEXT NOT NULL,              -- no cascade: a call analysed again keeps its decisions
    rule TEXT NOT NULL,                 -- a flag is known by its rule and start, which survive re-analysis
    start_s REAL NOT NULL,
    decision TEXT NOT NULL CHECK (decision IN ('confirmed', 'dismissed')),
    note TEXT NOT NULL DEFAULT '',
    reviewer TEXT NOT NULL,
    at TEXT NOT NULL
);
CREATE INDEX reviews_call ON reviews (call_id, rule, start_s);
""",
}
REVIEW_DECISIONS = ("confirmed", "dismissed")


class StoreError(Exception):
    """A store that cannot be opened or used; the message says why."""


def now() -> str:
    return datetime.now(timezone.utc).isoformat(timespec="seconds")


class Store:
    def __init__(self, path: str | Path, readonly: bool = False):
        self.path = Path(path)
        if readonly and not self.path.is_file():
            raise StoreError(f"no store at {self.path}")
        try:
            if not readonly:
                self.path.parent.mkdir(parents=True, exist_ok=True)
            uri = f"file:{self.path}?mode=ro" if readonly else f"file:{self.path}"
            # autocommit mode: transactions are opened explicitly (`transaction`), one per call
            self.db = sqlite3.connect(uri, uri=True, isolation_level=None, check_same_thread=False, timeout=30)
            self.db.row_factory = sqlite3.Row
            self.db.execute("PRAGMA foreign_keys = ON")
            if not readonly:
                self.db.execute("PRAGMA journal_mode = WAL")
                self.db.execute("PRAGMA synchronous = NORMAL")  # WAL + NORMAL: durable at each checkpoint, never corrupt
            version = self.db.execute("PRAGMA user_version").fetchone()[0]
        except sqlite3.DatabaseError as error:
            raise StoreError(f"cannot open the store {self.path}: {error}") from None
        if version > STORE_VERSION:
            raise StoreError(f"the store {self.path} was made by a newer analyzer (store version {version}); "
                             "upgrade analyzer to use it")
        if version == 0:
            if readonly:
                raise StoreError(f"{self.path} is not an analyzer store")
            tables = self.db.execute("SELECT count(*) FROM sqlite_master").fetchone()[0]
            if tables:
                raise StoreError(f"{self.path} is an SQLite database of something else, not an analyzer store")
            self.db.executescript(f"BEGIN IMMEDIATE; {_SCHEMA} PRAGMA user_version = 1; COMMIT;")
            version = 1
        if version < STORE_VERSION:
            if readonly:
                raise StoreError(f"the store {self.path} is from an older analyzer: open it once for writing "
                                 "(any `analyzer analyze --store` run, or `analyzer serve` without --read-only)")
            for step in range(version + 1, STORE_VERSION + 1):
                self.db.executescript(f"BEGIN IMMEDIATE; {_MIGRATIONS[step]} PRAGMA user_version = {step}; COMMIT;")

    def close(self) -> None:
        self.db.close()

    def __enter__(self) -> Store:
        return self

    def __exit__(self, *_) -> None:
        self.close()

    @contextmanager
    def transaction(self) -> Iterator[sqlite3.Connection]:
        """All or nothing: a crash or kill before COMMIT leaves the store as it was."""
        if not self.db.in_transaction:
            self.db.execute("BEGIN IMMEDIATE")
        try:
            yield self.db
        except BaseException:
            self.db.execute("ROLLBACK")
            raise
        self.db.execute("COMMIT")

    # --- runs ---------------------------------------------------------------------------------------------

    def start_run(self, analyzer_version: str, command: str, engine: str, workers: int, models: dict,
                  params: dict) -> int:
        with self.transaction():
            cursor = self.db.execute(
                "INSERT INTO runs (started_at, analyzer_version, command, host, engine, workers, models, params) "
                "VALUES (?, ?, ?, ?, ?, ?, ?, ?)",
                (now(), analyzer_version, command, socket.gethostname(), engine, workers,
                 json.dumps(models, ensure_ascii=False), json.dumps(params, ensure_ascii=False)))
        return cursor.lastrowid

    def finish_run(self, run_id: int, analyzed: int, skipped: int, failed: int) -> None:
        with self.transaction():
            self.db.execute("UPDATE runs SET finished_at = ?, analyzed = ?, skipped = ?, failed = ? WHERE run_id = ?",
                            (now(), analyzed, skipped, failed, run_id))

    # --- what is done -------------------------------------------------------------------------------------

    def audio_sha256(self, path: Path) -> str:
        """The file's content hash, from `known_files` when its size and modification time are unchanged."""
        from .audio import sha256_of

        stat = path.stat()
        key = str(path.resolve())
        row = self.db.execute("SELECT size, mtime_ns, audio_sha256 FROM known_files WHERE path = ?", (key,)).fetchone()
        if row and row["size"] == stat.st_size and row["mtime_ns"] == stat.st_mtime_ns:
            return row["audio_sha256"]
        digest = sha256_of(path)
        with self.transaction():
            self.db.execute("INSERT OR REPLACE INTO known_files VALUES (?, ?, ?, ?)",
                            (key, stat.st_size, stat.st_mtime_ns, digest))
        return digest

    def done(self) -> dict[str, tuple[str, str]]:
        """audio sha256 → (call_id, fingerprint) of every stored call."""
        rows = self.db.execute("SELECT audio_sha256, call_id, fingerprint FROM calls")
        return {row[0]: (row[1], row[2]) for row in rows}

    def result(self, call_id: str) -> CallResult:
        row = self.db.execute("SELECT result FROM calls WHERE call_id = ?", (call_id,)).fetchone()
        if row is None:
            raise KeyError(call_id)
        return CallResult.from_dict(json.loads(row[0]))

    def calls_per_borrower_day(self) -> dict[tuple[str, str], set[str]]:
        """(borrower_id, date) → the stored calls to that borrower that day (call frequency rules)."""
        found: dict[tuple[str, str], set[str]] = {}
        rows = self.db.execute("SELECT borrower_id, substr(started_at, 1, 10), call_id FROM calls "
                               "WHERE borrower_id IS NOT NULL AND started_at IS NOT NULL")
        for borrower, day, call_id in rows:
            found.setdefault((borrower, day), set()).add(call_id)
        return found

    # --- writing ------------------------------------------------------------------------------------------

    def save(self, result: CallResult, fingerprint: str, run_id: int | None) -> str | None:
        """Store one call, replacing any earlier result for the same audio or the same call id, in one
        transaction. Returns the call id of a different recording this one replaced, if any."""
        with self.transaction():
            replaced = self.db.execute("SELECT call_id FROM calls WHERE call_id = ? AND audio_sha256 != ?",
                                       (result.call_id, result.source.sha256)).fetchone()
            self.db.execute("DELETE FROM calls WHERE call_id = ? OR audio_sha256 = ?",
                            (result.call_id, result.source.sha256))
            self._insert_call(result, fingerprint, run_id)
            self.db.execute("DELETE FROM failures WHERE audio_sha256 = ?", (result.source.sha256,))
        return replaced[0] if replaced else None

    def record_failure(self, run_id: int | None, path: str, error: str, audio_sha256: str | None = None,
                       call_id: str | None = None) -> None:
        with self.transaction():
            self.db.execute("INSERT INTO failures (run_id, path, audio_sha256, call_id, error, at) "
                            "VALUES (?, ?, ?, ?, ?, ?)", (run_id, path, audio_sha256, call_id, error, now()))

    def _insert_call(self, result: CallResult, fingerprint: str, run_id: int | None) -> None:
        call_id, timelines, metadata, source = result.call_id, result.timelines, result.metadata, result.source
        _insert(self.db, "calls", [(
            call_id, source.sha256, source.path, source.duration_s, source.sample_rate, source.channels,
            result.provenance.params.get("layout"), *(_text(metadata.get(key)) for key in METADATA_COLUMNS),
            json.dumps(metadata, ensure_ascii=False), result.risk, result.review_priority,
            PRIORITY_RANK.get(result.review_priority, 0), len(result.turns), len(result.flags),
            ",".join(sorted({f.category for f in result.flags})), result.metrics.overlap_s, result.metrics.silence_s,
            len(result.metrics.interruptions), max(timelines.collector_pressure, default=None),
            max(timelines.borrower_stress, default=None), len(result.errors), fingerprint, run_id, now(),
            result.to_json())])
        _insert(self.db, "speakers", [
            (call_id, s.id, s.role, s.channel, s.talk_time_s, s.role_confidence) for s in result.speakers])
        _insert(self.db, "turns", [
            (call_id, index, t.start, t.end, t.speaker, t.role, t.text, t.emotion.label if t.emotion else None,
             t.sentiment, t.offensive, t.top_act(), t.arousal, t.pressure, t.stress,
             json.dumps({"emotion": t.emotion.scores if t.emotion else {}, "acts": t.acts}))
            for index, t in enumerate(result.turns)])
        _insert(self.db, "flags", [
            (call_id, index, f.rule, f.rule_version, f.category, f.severity, f.start, f.end, f.role, f.speaker,
             f.turn, f.evidence, f.confidence) for index, f in enumerate(result.flags)])
        _insert(self.db, "timelines", [
            (call_id, t, timelines.collector_pressure[i], timelines.borrower_stress[i],
             json.dumps({role: {label: series[i] for label, series in labels.items()}
                         for role, labels in timelines.emotion.items()}))
            for i, t in enumerate(timelines.t)])
        _insert(self.db, "metrics", [
            (call_id, speaker, p.role, p.talk_time_s, p.talk_share, p.speech_rate_cps, p.turns, p.interruptions_made,
             p.interrupted, p.response_latency_s, p.responses) for speaker, p in result.metrics.parties.items()])

    def record_review(self, call_id: str, flag: int, decision: str, note: str, reviewer: str) -> dict:
        """A reviewer's decision on one flag of a stored call."""
        if decision not in REVIEW_DECISIONS:
            raise ValueError(f"a decision is one of {', '.join(REVIEW_DECISIONS)} (got {decision!r})")
        if not reviewer.strip():
            raise ValueError("a decision needs the reviewer's name")
        row = self.db.execute("SELECT rule, start_s FROM flags WHERE call_id = ? AND flag = ?",
                              (call_id, flag)).fetchone()
        if row is None:
            raise KeyError(f"no flag {flag} in call {call_id}")
        review = {"call_id": call_id, "rule": row["rule"], "start_s": row["start_s"], "decision": decision,
                  "note": note.strip(), "reviewer": reviewer.strip(), "at": now()}
        with self.transaction():
            self.db.execute("INSERT INTO reviews (call_id, rule, start_s, decision, note, reviewer, at) "
                            "VALUES (:call_id, :rule, :start_s, :decision, :note, :reviewer, :at)", review)
        return review

    def reviews(self, call_id: str) -> dict[tuple[str, float], dict]:
        """(rule, start_s) → the latest decision on that flag of the call."""
        rows = self.db.execute("SELECT * FROM reviews WHERE call_id = ? ORDER BY review_id", (call_id,))
        return {(row["rule"], row["start_s"]): dict(row) for row in rows}

    # --- reading ------------------------------------------------------------------------------------------

    def count(self, table: str = "calls") -> int:
        return self.db.execute(f"SELECT count(*) FROM {_table(table)}").fetchone()[0]

    def rows(self, table: str) -> Iterator[dict]:
        """Every row of a table, in key order."""
        order = {"runs": "run_id", "failures": "failure_id", "calls": "call_id", "reviews": "review_id"}.get(
            table, "call_id, 2")
        for row in self.db.execute(f"SELECT * FROM {_table(table)} ORDER BY {order}"):
            yield dict(row)

    def columns(self, table: str) -> list[str]:
        return [row[1] for row in self.db.execute(f"PRAGMA table_info({_table(table)})")]


TABLES = ("calls", "speakers", "turns", "flags", "timelines", "metrics", "reviews", "failures", "runs")


def _table(name: str) -> str:
    if name not in TABLES:
        raise ValueError(f"no table {name!r} in the store (one of {', '.join(TABLES)})")
    return name


def _insert(db: sqlite3.Connection, table: str, rows: list[tuple]) -> None:
    if rows:
        db.executemany(f"INSERT INTO {table} VALUES ({', '.join('?' * len(rows[0]))})", rows)


def _text(value) -> str | None:
    return None if value in (None, "") else str(value)
