-- Count and total duration of ended calls per hour of their start, type
-- and connected (as call_rollups), for each caller and called number
-- (exact) and each of its prefixes of 1 to 8 characters (not exact), and
-- per day for the prefixes of 1 to 4 characters: statistics filtered by
-- a number or a prefix read one row per bucket (a day of a number or of
-- a longer prefix: the rows of its hours with calls). Written in the
-- transaction that writes the call's record. The SQLite file is the same schema, its table WITHOUT ROWID.
CREATE TABLE call_number_rollups (
    side             TEXT    NOT NULL CHECK (side IN ('caller', 'called')),
    number           TEXT    NOT NULL,   -- the number, or a prefix of it
    exact            BOOLEAN NOT NULL,   -- number is the whole number
    grain            TEXT    NOT NULL CHECK (grain IN ('hour', 'day')),
    bucket           BIGINT  NOT NULL,   -- the hour's or day's first instant
    type             TEXT    NOT NULL,
    connected        BOOLEAN NOT NULL,
    calls            BIGINT  NOT NULL,
    duration_seconds BIGINT  NOT NULL,
    PRIMARY KEY (side, number, exact, grain, bucket, type, connected)
);

-- Records written before this version are counted once, by the first
-- call records service that starts on the database (in its time zone's
-- buckets, which SQL cannot compute).
INSERT INTO call_settings (name, value)
    SELECT 'number_rollups_backfill', 'pending' WHERE EXISTS (SELECT 1 FROM call_records);
