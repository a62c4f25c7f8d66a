"""The run store's SQLite schema, as an ordered list of migrations.

A store file records how many migrations it has seen in ``meta.schema_version``. Opening a
file applies the missing ones in order, each in its own transaction, so a file is always at
exactly one version. A file written by a newer sparring (a higher version than this code
knows) is refused rather than misread.
"""

from __future__ import annotations

import contextlib
import os
import sqlite3
from pathlib import Path

from sparring.errors import StoreError

# Each entry is one migration: the statements that take the schema from version i to i + 1.
# Never edit a released entry; append a new one instead, because files in the wild are at
# every past version.
MIGRATIONS: tuple[tuple[str, ...], ...] = (
    (
        "CREATE TABLE meta (key TEXT PRIMARY KEY, value TEXT NOT NULL)",
        """CREATE TABLE runs (
            id TEXT PRIMARY KEY,
            kind TEXT NOT NULL,
            created_at TEXT NOT NULL,
            finished_at TEXT,
            status TEXT NOT NULL
                CHECK (status IN ('running', 'finished', 'interrupted', 'failed', 'budget')),
            config TEXT NOT NULL,
            seed INTEGER NOT NULL,
            model_ids TEXT NOT NULL,
            versions TEXT NOT NULL
        )""",
        # seq aliases the rowid, so it grows with every insert and needs no MAX() lookup.
        """CREATE TABLE behaviors (
            seq INTEGER PRIMARY KEY,
            run_id TEXT NOT NULL REFERENCES runs (id),
            id TEXT NOT NULL,
            category TEXT NOT NULL,
            benign INTEGER NOT NULL,
            behavior TEXT NOT NULL,
            UNIQUE (run_id, id)
        )""",
        """CREATE TABLE attempts (
            seq INTEGER PRIMARY KEY,
            run_id TEXT NOT NULL REFERENCES runs (id),
            key TEXT NOT NULL,
            behavior_id TEXT NOT NULL,
            attack TEXT NOT NULL,
            sample INTEGER NOT NULL,
            spec TEXT NOT NULL,
            status TEXT NOT NULL CHECK (status IN ('done', 'error')),
            error TEXT,
            UNIQUE (run_id, key)
        )""",
        """CREATE TABLE completions (
            run_id TEXT NOT NULL,
            attempt_key TEXT NOT NULL,
            turn INTEGER NOT NULL,
            request TEXT NOT NULL,
            text TEXT NOT NULL,
            finish_reason TEXT NOT NULL CHECK (finish_reason IN ('stop', 'length', 'error')),
            prompt_tokens INTEGER NOT NULL,
            completion_tokens INTEGER NOT NULL,
            latency_s REAL NOT NULL,
            error TEXT,
            PRIMARY KEY (run_id, attempt_key, turn),
            FOREIGN KEY (run_id, attempt_key) REFERENCES attempts (run_id, key)
        )""",
        """CREATE TABLE verdicts (
            id INTEGER PRIMARY KEY,
            run_id TEXT NOT NULL,
            attempt_key TEXT NOT NULL,
            judge_id TEXT NOT NULL,
            label TEXT NOT NULL CHECK (label IN ('unsafe', 'safe', 'refusal', 'unscorable')),
            p_unsafe REAL CHECK (p_unsafe IS NULL OR (p_unsafe >= 0.0 AND p_unsafe <= 1.0)),
            rationale TEXT,
            created_at TEXT NOT NULL,
            FOREIGN KEY (run_id, attempt_key) REFERENCES attempts (run_id, key)
        )""",
        "CREATE INDEX verdicts_by_attempt ON verdicts (run_id, attempt_key, id)",
        """CREATE TABLE completion_cache (
            key TEXT PRIMARY KEY,
            model_id TEXT NOT NULL,
            completion TEXT NOT NULL,
            created_at TEXT NOT NULL
        )""",
    ),
    # 2: named steps of multi-stage runs (a DART iteration's selection, checkpoint, eval),
    # so that a resumed run knows which stages finished and what they produced.
    (
        """CREATE TABLE steps (
            run_id TEXT NOT NULL REFERENCES runs (id),
            name TEXT NOT NULL,
            created_at TEXT NOT NULL,
            payload TEXT NOT NULL,
            PRIMARY KEY (run_id, name)
        )""",
    ),
    # 3: which process runs a run (host, pid, process start), so that a run left "running"
    # by a killed process can be told from one that is still going.
    ("ALTER TABLE runs ADD COLUMN owner TEXT",),
    # 4: human labels from review (`sparring view`): a person's unsafe/safe/refusal call on
    # an attempt, with a note, who and when. A label never changes a verdict; relabelling
    # adds a row, and the latest row per attempt counts. The indexes let the viewer walk a
    # run in stored order and answer "which label did this judge give first" from the index
    # alone, so its pages stay fast on runs of 100,000 attempts.
    (
        """CREATE TABLE labels (
            id INTEGER PRIMARY KEY,
            run_id TEXT NOT NULL,
            attempt_key TEXT NOT NULL,
            label TEXT NOT NULL CHECK (label IN ('unsafe', 'safe', 'refusal')),
            note TEXT NOT NULL,
            who TEXT NOT NULL,
            created_at TEXT NOT NULL,
            FOREIGN KEY (run_id, attempt_key) REFERENCES attempts (run_id, key)
        )""",
        "CREATE INDEX labels_by_attempt ON labels (run_id, attempt_key, id)",
        "CREATE INDEX attempts_in_order ON attempts (run_id, seq)",
        "CREATE INDEX verdicts_by_judge ON verdicts "
        "(run_id, attempt_key, judge_id, id, label, p_unsafe)",
    ),
    # 5: what produced a completion beyond the model's text (Completion.meta, JSON; NULL
    # when empty), e.g. a guard's block and the model calls it made.
    ("ALTER TABLE completions ADD COLUMN meta TEXT",),
    # 6: a judge's probability that the reply declines (Verdict.p_refusal), where it has one.
    (
        "ALTER TABLE verdicts ADD COLUMN p_refusal REAL "
        "CHECK (p_refusal IS NULL OR (p_refusal >= 0.0 AND p_refusal <= 1.0))",
    ),
)

SCHEMA_VERSION = len(MIGRATIONS)
"""The schema version this code writes and the highest it can read."""


def stored_version(conn: sqlite3.Connection) -> int:
    """The file's schema version: 0 for a fresh file, -1 for a foreign database."""
    tables = {row[0] for row in conn.execute("SELECT name FROM sqlite_master WHERE type='table'")}
    if "meta" not in tables:
        return 0 if not tables else -1
    row = conn.execute("SELECT value FROM meta WHERE key = 'schema_version'").fetchone()
    return int(row[0]) if row is not None else -1


def migrate(conn: sqlite3.Connection, path: Path) -> None:
    """Bring the file at ``path`` up to SCHEMA_VERSION, or refuse it with a StoreError.

    ``conn`` must be in autocommit mode (isolation_level=None): each migration runs in an
    explicit IMMEDIATE transaction, which also serialises two processes opening a fresh
    file at once.
    """
    while True:
        conn.execute("BEGIN IMMEDIATE")
        try:
            version = stored_version(conn)
            if version < 0:
                raise StoreError(
                    f"{path} is an SQLite database but not a sparring run store; "
                    "pass a different store path"
                )
            if version > SCHEMA_VERSION:
                raise StoreError(
                    f"{path} was written by a newer sparring (store schema v{version}, this "
                    f"version reads up to v{SCHEMA_VERSION}); upgrade: pip install -U sparring"
                )
            if version == SCHEMA_VERSION:
                conn.execute("COMMIT")
                return
            for statement in MIGRATIONS[version]:
                conn.execute(statement)
            conn.execute(
                "INSERT OR REPLACE INTO meta (key, value) VALUES ('schema_version', ?)",
                (str(version + 1),),
            )
            conn.execute("COMMIT")
        except BaseException:
            conn.execute("ROLLBACK")
            raise


def connect(path: Path) -> sqlite3.Connection:
    """Open the store file at ``path`` in WAL mode, migrated to SCHEMA_VERSION.

    The connection is in autocommit mode: writers open their transactions explicitly.
    """
    if path.is_dir():
        raise StoreError(f"run store {path} is a folder; pass a file such as {path}/runs.sqlite")
    try:
        # The store holds every prompt and reply, harmful ones included: owner-only. SQLite
        # gives its -wal and -shm files the mode of the database file. Only a new file is
        # opened here: closing any descriptor of a file drops the POSIX locks this process
        # holds on it, so an existing store already open in SQLite here would lose its
        # locks, and another process could checkpoint and delete the WAL under it.
        with contextlib.suppress(FileExistsError):
            os.close(os.open(path, os.O_CREAT | os.O_EXCL | os.O_WRONLY, 0o600))
        conn = sqlite3.connect(path, isolation_level=None)
    except (OSError, sqlite3.Error) as err:
        reason = err.strerror if isinstance(err, OSError) else str(err)
        raise StoreError(
            f"cannot open run store {path} ({reason}); pass a writable --store path"
        ) from err
    try:
        conn.execute("PRAGMA busy_timeout = 10000")
        conn.execute("PRAGMA journal_mode = WAL")
        # In WAL mode NORMAL keeps every commit across a process crash; only a power cut can
        # drop the latest commits, and the file stays consistent either way.
        conn.execute("PRAGMA synchronous = NORMAL")
        conn.execute("PRAGMA foreign_keys = ON")
        migrate(conn, path)
    except sqlite3.OperationalError as err:
        # Permissions, a full disk or a read-only mount: the file may be a fine store.
        conn.close()
        raise StoreError(
            f"cannot write run store {path} ({err}); pass a writable --store path or fix the "
            "permissions of the file and its folder"
        ) from err
    except sqlite3.DatabaseError as err:
        conn.close()
        raise StoreError(
            f"{path} is not a sparring run store ({err}); pass a different store path"
        ) from err
    except BaseException:
        conn.close()
        raise
    return conn
