-- The SIP edge's subscribers: who may register and call through the
-- platform's SIP nodes. The password itself is never stored: only the
-- digest HA1s computed from it (H(username:realm:password), RFC 7616
-- §3.4.2), one per algorithm the nodes offer (RFC 8760: SHA-256 and
-- MD5), with the realm they were computed for.
-- Times are milliseconds since the Unix epoch.

CREATE TABLE sip_subscribers (
    username   TEXT    NOT NULL PRIMARY KEY,
    realm      TEXT    NOT NULL,
    ha1_md5    TEXT    NOT NULL,
    ha1_sha256 TEXT    NOT NULL,
    disabled   BOOLEAN NOT NULL DEFAULT FALSE,
    created_at BIGINT  NOT NULL,
    updated_at BIGINT  NOT NULL,
    version    BIGINT  NOT NULL DEFAULT 1      -- counts real changes
);
