package bench

import (
	"context"
	"database/sql"
	"fmt"
	"net/url"
	"strings"
	"sync/atomic"
	"time"

	_ "github.com/jackc/pgx/v5/stdlib" // the admin connection that makes each round's database
)

// With --postgres, both servers keep their records on one PostgreSQL
// server, each round of each server in a database of its own made for it
// and dropped after: Convene's call records through convene.records.sql,
// Kamailio's subscribers and accounting through db_postgres.

// benchDBSeq tells apart the databases of one run.
var benchDBSeq atomic.Int64

// pgDatabase is a database made for one round of one server.
type pgDatabase struct {
	admin *sql.DB
	name  string
	url   *url.URL // the database's own URL
}

// newPGDatabase makes a fresh database on the server adminURL reaches.
func newPGDatabase(ctx context.Context, adminURL, who string) (*pgDatabase, error) {
	u, err := url.Parse(adminURL)
	if err != nil || (u.Scheme != "postgres" && u.Scheme != "postgresql") || u.Host == "" {
		return nil, fmt.Errorf("bench sip: --postgres %q is not a postgres://user@host:port/db URL", redactURL(adminURL))
	}
	admin, err := sql.Open("pgx", adminURL)
	if err != nil {
		return nil, err
	}
	name := fmt.Sprintf("convene_bench_%s_%d_%d", who, time.Now().Unix(), benchDBSeq.Add(1))
	if _, err := admin.ExecContext(ctx, "CREATE DATABASE "+name); err != nil {
		admin.Close()
		return nil, fmt.Errorf("bench sip: making the database %s on %s: %w", name, redactURL(adminURL), err)
	}
	own := *u
	own.Path = "/" + name
	return &pgDatabase{admin: admin, name: name, url: &own}, nil
}

// URL is the database's URL, as Convene's records take it.
func (d *pgDatabase) URL() string { return d.url.String() }

// KamailioURL is the database's URL as db_postgres takes it: user and
// password always present, no query.
func (d *pgDatabase) KamailioURL() string {
	user, pw := "postgres", "unused"
	if d.url.User != nil {
		user = d.url.User.Username()
		if p, ok := d.url.User.Password(); ok {
			pw = p
		}
	}
	host := d.url.Host
	if !strings.Contains(host, ":") {
		host += ":5432"
	}
	return "postgres://" + user + ":" + pw + "@" + host + "/" + d.name
}

// drop drops the database (its connections first).
func (d *pgDatabase) drop() {
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	_, _ = d.admin.ExecContext(ctx, "SELECT pg_terminate_backend(pid) FROM pg_stat_activity WHERE datname = $1 AND pid <> pg_backend_pid()", d.name)
	_, _ = d.admin.ExecContext(ctx, "DROP DATABASE IF EXISTS "+d.name)
	d.admin.Close()
}

// redactURL hides a URL's password.
func redactURL(s string) string {
	u, err := url.Parse(s)
	if err != nil || u.User == nil {
		return s
	}
	if _, ok := u.User.Password(); ok {
		u.User = url.UserPassword(u.User.Username(), "xxxxx")
	}
	return u.String()
}

// kamailioSchemaPG is kamailioSchema in PostgreSQL's dialect (Kamailio's
// own postgres schemas of the same tables).
const kamailioSchemaPG = `
CREATE TABLE version (id SERIAL PRIMARY KEY NOT NULL, table_name VARCHAR(32) NOT NULL,
  table_version INTEGER DEFAULT 0 NOT NULL, CONSTRAINT version_table_name_idx UNIQUE (table_name));
INSERT INTO version (table_name, table_version) VALUES ('version', '1');
CREATE TABLE subscriber (id SERIAL PRIMARY KEY NOT NULL, username VARCHAR(64) DEFAULT '' NOT NULL,
  domain VARCHAR(64) DEFAULT '' NOT NULL, password VARCHAR(64) DEFAULT '' NOT NULL,
  ha1 VARCHAR(128) DEFAULT '' NOT NULL, ha1b VARCHAR(128) DEFAULT '' NOT NULL,
  CONSTRAINT subscriber_account_idx UNIQUE (username, domain));
CREATE INDEX subscriber_username_idx ON subscriber (username);
INSERT INTO version (table_name, table_version) VALUES ('subscriber', '7');
CREATE TABLE acc (id SERIAL PRIMARY KEY NOT NULL, method VARCHAR(16) DEFAULT '' NOT NULL,
  from_tag VARCHAR(128) DEFAULT '' NOT NULL, to_tag VARCHAR(128) DEFAULT '' NOT NULL,
  callid VARCHAR(255) DEFAULT '' NOT NULL, sip_code VARCHAR(3) DEFAULT '' NOT NULL,
  sip_reason VARCHAR(128) DEFAULT '' NOT NULL, time TIMESTAMP WITHOUT TIME ZONE NOT NULL);
CREATE INDEX acc_callid_idx ON acc (callid);
INSERT INTO version (table_name, table_version) VALUES ('acc', '5');
`
