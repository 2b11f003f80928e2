// Package records keeps what Convene must remember in SQL: today the
// public templates (seed 000 §10, the seed's TTemplateInfo) and the
// directory of booked numbers, scheduled conferences, personal templates
// and virtual rooms (000 §7.3), which a scheduler reports to its registry,
// also for a failed master platform (000 §7.2); call records, alarms and
// logs come next.
//
// One code path, two databases: a SQLite file (the default, a pure-Go
// driver, no cgo) or PostgreSQL (pgx through database/sql). Queries are
// written once with $1, $2, ... placeholders, which both drivers bind;
// what differs between the two (opening, pragmas, the migration lock)
// lives in dialect.go. The schema is embedded and versioned
// (migrations/NNNN_name.sql), applied at Open, each migration in one
// transaction; a database migrated by a newer binary is refused.
//
// Every write is safe to repeat: a retried create or put that finds its
// own content already stored succeeds without change, and versions count
// real changes only.
//
// records is infrastructure (tier 2): it imports no Convene package and
// must never import a service (scheduler, api, registry, ...) or the host
// that wires them; services use it through interfaces they declare.
package records
