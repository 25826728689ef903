-- Imports of the Python service's store (`study-mode-api import-legacy`, src/legacy/). One row per
-- run: its watermark, how far it got (a crashed run is resumed from its cursor) and its counts.
CREATE TABLE study_mode.legacy_imports (
    id          BIGSERIAL   PRIMARY KEY,
    -- The legacy layout read: `current` or `older` (docs/OPERATIONS.md, "Cut-over").
    layout      TEXT        NOT NULL,
    -- The database clock when the run started: the next run reads rows changed since then
    -- (minus a safety margin for transactions still open at that moment).
    started_at  TIMESTAMPTZ NOT NULL,
    -- This run reads rows whose updated_at is at or after `since`; NULL = every row.
    since       TIMESTAMPTZ,
    -- `threads`, then `items`, then `done`.
    phase       TEXT        NOT NULL DEFAULT 'threads',
    -- The last legacy id committed in `phase` (rows are read in id order).
    cursor_id   TEXT,
    -- Running totals (new, changed, unchanged, skipped per table).
    counts      JSONB       NOT NULL DEFAULT '{}',
    finished_at TIMESTAMPTZ
);

-- Every legacy row an import could not take, and why. Never silently dropped.
CREATE TABLE study_mode.legacy_import_skipped (
    import_id    BIGINT      NOT NULL REFERENCES study_mode.legacy_imports (id) ON DELETE CASCADE,
    source_table TEXT        NOT NULL,
    id           TEXT        NOT NULL,
    reason       TEXT        NOT NULL,
    PRIMARY KEY (import_id, source_table, id)
);
