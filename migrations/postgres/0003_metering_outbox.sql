-- Credit metering (src/metering/outbox.rs): deducts and releases waiting for the metering API's
-- acknowledgement. One row per model call, keyed by the metering `request_id`; deleted once
-- acknowledged. Times are unix milliseconds.
CREATE TABLE study_mode.metering_outbox (
    request_id      TEXT   PRIMARY KEY,
    -- The metering API the reservation was made at (a worker delivers only its own API's rows).
    api_url         TEXT   NOT NULL,
    -- `open` (admitted, run not settled yet: `body` is the estimated deduct sent if it never
    -- is), `deduct`, `release`, or `dead` (refused for good by the API; kept for the operator).
    kind            TEXT   NOT NULL,
    user_id         TEXT   NOT NULL,
    -- The student's bearer, forwarded as on the check; gone with the row.
    bearer          TEXT,
    body            TEXT   NOT NULL,
    attempts        BIGINT NOT NULL DEFAULT 0,
    created_ms      BIGINT NOT NULL,
    next_attempt_ms BIGINT NOT NULL,
    last_error      TEXT
);
CREATE INDEX metering_outbox_due ON study_mode.metering_outbox (api_url, next_attempt_ms);
