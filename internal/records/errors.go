package records

import "errors"

var (
	// ErrNotFound: no record with that key.
	ErrNotFound = errors.New("records: not found")
	// ErrExists: a different record already holds that key; read it, or
	// update it instead of creating.
	ErrExists = errors.New("records: a different record already exists with that key")
	// ErrConflict: the record changed since the version the update was
	// based on; read it again and reapply the change.
	ErrConflict = errors.New("records: the record was changed by another writer")
	// ErrInvalid: the record breaks a rule of the schema.
	ErrInvalid = errors.New("records: invalid record")
	// ErrBadURL: the records URL names no database this build can open.
	ErrBadURL = errors.New("records: bad database URL: use sqlite:///path/records.db, a file path, or postgres://user@host/db")
	// ErrSchemaTooNew: the database was migrated by a newer binary, whose
	// tables this one does not know; run that version (or newer) instead.
	ErrSchemaTooNew = errors.New("records: the database schema is newer than this binary")
	// ErrUnavailable: the database cannot be reached or opened.
	ErrUnavailable = errors.New("records: database unavailable")
)
