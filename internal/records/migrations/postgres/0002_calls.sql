-- Calls (seed 003): the calls in progress, one record per ended call,
-- their hourly and daily roll-ups, and the log lines of calls and
-- conferences. Times are milliseconds since the Unix epoch (log lines:
-- microseconds); 0 is "none". The SQLite file is the same schema; here
-- the columns compared by range (id, caller, called) sort in byte order
-- ("C" collation), as SQLite's do, so a prefix is a range of the index.

-- Calls started and not yet ended, shared by every SIP node of the
-- platform. A row leaves when its call record is written.
CREATE TABLE live_calls (
    id        TEXT COLLATE "C" NOT NULL PRIMARY KEY,   -- from Call-ID and from-tag
    call_id   TEXT    NOT NULL DEFAULT '',
    from_tag  TEXT    NOT NULL DEFAULT '',
    to_tag    TEXT    NOT NULL DEFAULT '',
    caller    TEXT COLLATE "C" NOT NULL DEFAULT '',
    called    TEXT COLLATE "C" NOT NULL DEFAULT '',
    type      TEXT    NOT NULL DEFAULT '',    -- voice, video, or '' while unknown
    connected BOOLEAN NOT NULL DEFAULT FALSE,
    start_at  BIGINT  NOT NULL DEFAULT 0,
    answer_at BIGINT  NOT NULL DEFAULT 0,
    node      TEXT    NOT NULL DEFAULT '',
    platform  TEXT    NOT NULL DEFAULT '',
    e164      TEXT    NOT NULL DEFAULT ''     -- the conference called, if any
);
CREATE INDEX live_calls_by_start ON live_calls (start_at, id);

-- One row per ended call, written once: never updated.
CREATE TABLE call_records (
    id               TEXT COLLATE "C" NOT NULL PRIMARY KEY,
    call_id          TEXT    NOT NULL,
    from_tag         TEXT    NOT NULL DEFAULT '',
    to_tag           TEXT    NOT NULL DEFAULT '',
    caller           TEXT COLLATE "C" NOT NULL DEFAULT '',
    called           TEXT COLLATE "C" NOT NULL DEFAULT '',
    type             TEXT    NOT NULL CHECK (type IN ('voice', 'video')),
    connected        BOOLEAN NOT NULL,
    start_at         BIGINT  NOT NULL,
    answer_at        BIGINT  NOT NULL DEFAULT 0,
    end_at           BIGINT  NOT NULL,
    duration_seconds BIGINT  NOT NULL DEFAULT 0,   -- answer to end
    status           INTEGER NOT NULL DEFAULT 0,   -- final SIP status code
    node             TEXT    NOT NULL DEFAULT '',
    platform         TEXT    NOT NULL DEFAULT '',
    e164             TEXT    NOT NULL DEFAULT ''
);
CREATE INDEX call_records_by_start ON call_records (start_at, id);
CREATE INDEX call_records_by_caller ON call_records (caller, start_at, id);
CREATE INDEX call_records_by_called ON call_records (called, start_at, id);

-- Count and total duration of ended calls per hour and per day of their
-- start (in the time zone named in call_settings), type and connected,
-- written in the transaction that writes the call's record.
CREATE TABLE call_rollups (
    grain            TEXT    NOT NULL CHECK (grain IN ('hour', 'day')),
    bucket           BIGINT  NOT NULL,   -- the hour's or day's first instant
    type             TEXT    NOT NULL,
    connected        BOOLEAN NOT NULL,
    calls            BIGINT  NOT NULL,
    duration_seconds BIGINT  NOT NULL,
    PRIMARY KEY (grain, bucket, type, connected)
);

CREATE TABLE call_settings (
    name  TEXT NOT NULL PRIMARY KEY,
    value TEXT NOT NULL
);

-- Log lines of calls (each SIP message in and out, each routing decision)
-- and of conferences, kept for a retention period.
CREATE TABLE log_lines (
    id      TEXT   NOT NULL PRIMARY KEY,   -- digest of the line: a line written twice is kept once
    at_us   BIGINT NOT NULL,
    call_id TEXT   NOT NULL DEFAULT '',
    e164    TEXT   NOT NULL DEFAULT '',
    level   TEXT   NOT NULL DEFAULT 'INFO',
    node    TEXT   NOT NULL DEFAULT '',
    message TEXT   NOT NULL,
    attrs   TEXT   NOT NULL DEFAULT '{}'   -- JSON object of strings
);
CREATE INDEX log_lines_by_call ON log_lines (call_id, at_us) WHERE call_id <> '';
CREATE INDEX log_lines_by_e164 ON log_lines (e164, at_us) WHERE e164 <> '';
CREATE INDEX log_lines_by_at ON log_lines (at_us);
