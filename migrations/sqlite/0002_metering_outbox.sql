-- Credit metering (src/metering/outbox.rs): SQLite twin of the PostgreSQL table. Deducts and
-- releases waiting for the metering API's acknowledgement; times are unix milliseconds.
CREATE TABLE metering_outbox (
    request_id      TEXT    NOT NULL PRIMARY KEY,
    api_url         TEXT    NOT NULL,
    kind            TEXT    NOT NULL,
    user_id         TEXT    NOT NULL,
    bearer          TEXT,
    body            TEXT    NOT NULL,
    attempts        INTEGER NOT NULL DEFAULT 0,
    created_ms      INTEGER NOT NULL,
    next_attempt_ms INTEGER NOT NULL,
    last_error      TEXT
);
CREATE INDEX metering_outbox_due ON metering_outbox (api_url, next_attempt_ms);
