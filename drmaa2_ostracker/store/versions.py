"""The store's tables, version by version: the schema this code writes, and the migrations
that bring an older store to it."""

from __future__ import annotations

__all__ = ["MIGRATIONS", "SCHEMA", "SCHEMA_V1", "SCHEMA_VERSION"]

#: Version of the schema this code writes; older stores are migrated, newer ones refused.
SCHEMA_VERSION = 3

#: The schema of version 1.
SCHEMA_V1 = """
CREATE TABLE meta (key TEXT PRIMARY KEY, value TEXT NOT NULL);
CREATE TABLE sessions (
    name TEXT PRIMARY KEY,
    created_us INTEGER NOT NULL,
    next_id INTEGER NOT NULL DEFAULT 1
);
CREATE TABLE arrays (
    session TEXT NOT NULL REFERENCES sessions(name) ON DELETE CASCADE,
    array_id TEXT NOT NULL,
    begin_index INTEGER NOT NULL,
    end_index INTEGER NOT NULL,
    step INTEGER NOT NULL,
    max_parallel INTEGER,
    template TEXT NOT NULL,
    launch TEXT,
    PRIMARY KEY (session, array_id)
);
CREATE TABLE jobs (
    seq INTEGER PRIMARY KEY,
    session TEXT NOT NULL REFERENCES sessions(name) ON DELETE CASCADE,
    job_id TEXT NOT NULL,
    array_id TEXT,
    task_index INTEGER,
    job_name TEXT,
    state INTEGER NOT NULL,
    sub_state TEXT NOT NULL DEFAULT '',
    annotation TEXT,
    exit_status INTEGER,
    terminating_signal TEXT,
    submission_us INTEGER NOT NULL,
    dispatch_us INTEGER,
    finish_us INTEGER,
    cpu_time REAL,
    pid INTEGER,
    pid_start INTEGER,
    rusage TEXT,
    template TEXT,
    launch TEXT,
    owner_pid INTEGER,
    owner_start INTEGER,
    UNIQUE (session, job_id)
);
CREATE INDEX jobs_by_array ON jobs (session, array_id, task_index) WHERE array_id IS NOT NULL;
"""

# No index on state or exit status: a transition would then dirty index pages too, doubling
# the cost of every commit (and of the WAL checkpoints), while a filter scans 100,000 rows in
# a few tens of milliseconds anyway. The array index changes only when jobs are inserted.

#: Migrations from version N to N + 1, applied in order.
MIGRATIONS: dict[int, str] = {
    # Arrays whose tasks are written only once touched (see supervisor.lazy): the places of
    # their tasks in the session's order, the next index to start, when they were
    # submitted, whether their untouched tasks are held.
    1: """
ALTER TABLE arrays ADD COLUMN first_seq INTEGER;
ALTER TABLE arrays ADD COLUMN next_index INTEGER;
ALTER TABLE arrays ADD COLUMN submission_us INTEGER;
ALTER TABLE arrays ADD COLUMN held INTEGER NOT NULL DEFAULT 0;
""",
    # The indices of tasks touched ahead of the array's cursor and reaped since (their rows
    # deleted): a JSON list, so that the next keeper never takes them for untouched tasks.
    2: """
ALTER TABLE arrays ADD COLUMN gone TEXT;
""",
}

#: The schema of a new store: version 1, then every migration.
SCHEMA = SCHEMA_V1 + "".join(MIGRATIONS[version] for version in sorted(MIGRATIONS))
