-- ChatKit thread store (SQLite twin of the PostgreSQL schema). Timestamps are RFC 3339 UTC
-- text with fixed microsecond precision, so text order is time order.
CREATE TABLE threads (
    id              TEXT NOT NULL PRIMARY KEY,
    user_id         TEXT NOT NULL,
    organization_id TEXT,
    lesson_path     TEXT,
    title           TEXT,
    status          TEXT NOT NULL DEFAULT '{"type":"active"}',
    metadata        TEXT NOT NULL DEFAULT '{}',
    created_at      TEXT NOT NULL,
    updated_at      TEXT NOT NULL
);
CREATE INDEX threads_user_created ON threads (user_id, created_at, id);
CREATE INDEX threads_user_lesson ON threads (user_id, lesson_path);

CREATE TABLE items (
    id         TEXT NOT NULL,
    thread_id  TEXT NOT NULL REFERENCES threads (id) ON DELETE CASCADE,
    user_id    TEXT NOT NULL,
    item_type  TEXT NOT NULL,
    created_at TEXT NOT NULL,
    updated_at TEXT NOT NULL,
    data       TEXT NOT NULL,
    PRIMARY KEY (thread_id, id)
);
CREATE INDEX items_thread_created ON items (thread_id, created_at, id);

CREATE TABLE attachments (
    id         TEXT NOT NULL PRIMARY KEY,
    user_id    TEXT NOT NULL,
    thread_id  TEXT,
    created_at TEXT NOT NULL,
    data       TEXT NOT NULL
);
CREATE INDEX attachments_user ON attachments (user_id);
