-- ChatKit thread store, schema `study_mode` (the Python service we replace keeps its own, other
-- tables in `study_mode_chat`). Every row carries the owning user's id; every query filters on it.
CREATE SCHEMA IF NOT EXISTS study_mode;

CREATE TABLE study_mode.threads (
    id              TEXT        PRIMARY KEY,
    user_id         TEXT        NOT NULL,
    organization_id TEXT,
    lesson_path     TEXT,
    title           TEXT,
    status          JSONB       NOT NULL DEFAULT '{"type":"active"}',
    metadata        JSONB       NOT NULL DEFAULT '{}',
    created_at      TIMESTAMPTZ NOT NULL,
    updated_at      TIMESTAMPTZ NOT NULL
);
CREATE INDEX threads_user_created ON study_mode.threads (user_id, created_at, id);
CREATE INDEX threads_user_lesson ON study_mode.threads (user_id, lesson_path);

CREATE TABLE study_mode.items (
    id         TEXT        NOT NULL,
    thread_id  TEXT        NOT NULL REFERENCES study_mode.threads (id) ON DELETE CASCADE,
    user_id    TEXT        NOT NULL,
    item_type  TEXT        NOT NULL,
    created_at TIMESTAMPTZ NOT NULL,
    updated_at TIMESTAMPTZ NOT NULL,
    data       JSONB       NOT NULL,
    PRIMARY KEY (thread_id, id)
);
CREATE INDEX items_thread_created ON study_mode.items (thread_id, created_at, id);

CREATE TABLE study_mode.attachments (
    id         TEXT        PRIMARY KEY,
    user_id    TEXT        NOT NULL,
    thread_id  TEXT,
    created_at TIMESTAMPTZ NOT NULL,
    data       JSONB       NOT NULL
);
CREATE INDEX attachments_user ON study_mode.attachments (user_id);
