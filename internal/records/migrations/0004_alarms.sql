-- Alarms (seed 003, process monitoring): one row per alarm the alarm
-- service raised, kept after it clears as history. At most one alarm of
-- a kind is active (cleared_at = 0) for one subject: the partial unique
-- index refuses a second, so that a service that raises again what it
-- raised before (a retry, a restart) finds the first.
-- Times are milliseconds since the Unix epoch; 0 is "none".

CREATE TABLE alarms (
    id         TEXT    NOT NULL PRIMARY KEY,
    kind       TEXT    NOT NULL,
    subject    TEXT    NOT NULL,
    severity   TEXT    NOT NULL CHECK (severity IN ('critical', 'major', 'minor')),
    raised_at  BIGINT  NOT NULL,
    cleared_at BIGINT  NOT NULL DEFAULT 0,
    acked      BOOLEAN NOT NULL DEFAULT FALSE,
    acked_at   BIGINT  NOT NULL DEFAULT 0
);
CREATE UNIQUE INDEX alarms_active ON alarms (kind, subject) WHERE cleared_at = 0;
CREATE INDEX alarms_by_raised ON alarms (raised_at, id);
