-- Public templates (seed 000 §10, the seed's TTemplateInfo) and the
-- numbers booked by the CM: scheduled conferences, personal templates and
-- virtual rooms (000 §7.3), which a scheduler reports to its registry.
-- Times are milliseconds since the Unix epoch; 0 is "none".

CREATE TABLE templates (
    e164             TEXT    NOT NULL PRIMARY KEY,
    moid             TEXT    NOT NULL,                -- the user domain
    platform         TEXT    NOT NULL,                -- the source platform
    name             TEXT    NOT NULL,
    scale            INTEGER NOT NULL,
    resolution       TEXT    NOT NULL,
    duration_minutes INTEGER NOT NULL,
    password         TEXT    NOT NULL DEFAULT '',     -- the join code each conference gets
    public           BOOLEAN NOT NULL DEFAULT FALSE,
    invited          TEXT    NOT NULL DEFAULT '[]',   -- JSON array of strings
    recording        BOOLEAN NOT NULL DEFAULT FALSE,
    created_at       BIGINT  NOT NULL,
    updated_at       BIGINT  NOT NULL,
    version          BIGINT  NOT NULL DEFAULT 1       -- counts real changes
);
CREATE INDEX templates_by_moid ON templates (moid, e164);
CREATE INDEX templates_by_platform ON templates (platform, e164);

CREATE TABLE bookings (
    e164       TEXT    NOT NULL PRIMARY KEY,
    kind       INTEGER NOT NULL CHECK (kind IN (2, 3, 4)),  -- RESERVE, TEMPLET, VIRTUAL
    moid       TEXT    NOT NULL,                            -- the user domain
    platform   TEXT    NOT NULL,                            -- the source platform
    name       TEXT    NOT NULL,
    start_at   BIGINT  NOT NULL DEFAULT 0,                  -- RESERVE only
    end_at     BIGINT  NOT NULL DEFAULT 0,                  -- RESERVE only
    created_at BIGINT  NOT NULL,
    updated_at BIGINT  NOT NULL,
    version    BIGINT  NOT NULL DEFAULT 1
);
CREATE INDEX bookings_by_moid ON bookings (moid, e164);
CREATE INDEX bookings_by_platform ON bookings (platform, e164);
