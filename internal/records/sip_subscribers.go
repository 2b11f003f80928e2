package records

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"time"
)

// SIPSubscriber is a user of the SIP edge: the name it registers and
// calls with, and its digest credentials. The password is never kept:
// HA1MD5 and HA1SHA256 are H(user:realm:password) in lower-case hex for
// MD5 and SHA-256 (RFC 7616 §3.4.2, RFC 8760), computed for Realm.
type SIPSubscriber struct {
	User      string
	Realm     string
	HA1MD5    string
	HA1SHA256 string
	// Disabled subscribers are refused as unknown ones are.
	Disabled bool

	// Set by the database; ignored on writes.
	CreatedAt time.Time
	UpdatedAt time.Time
	Version   int64 // 1 at creation, +1 at each change
}

// LogValue logs a subscriber without its credentials.
func (s SIPSubscriber) LogValue() slog.Value {
	return slog.GroupValue(slog.String("user", s.User), slog.String("realm", s.Realm),
		slog.Bool("disabled", s.Disabled), slog.Int64("version", s.Version))
}

// MaxSIPUserLen is the longest subscriber name.
const MaxSIPUserLen = 64

// ValidSIPUser reports whether user may name a subscriber: 1 to 64
// letters, digits and . _ - + ~ (a SIP URI's user part without escapes,
// and no '@', ':' or ';').
func ValidSIPUser(user string) bool {
	if len(user) == 0 || len(user) > MaxSIPUserLen {
		return false
	}
	for i := 0; i < len(user); i++ {
		c := user[i]
		switch {
		case c >= 'a' && c <= 'z', c >= 'A' && c <= 'Z', c >= '0' && c <= '9':
		case c == '.' || c == '_' || c == '-' || c == '+' || c == '~':
		default:
			return false
		}
	}
	return true
}

func lowerHex(s string, n int) bool {
	if len(s) != n {
		return false
	}
	for i := 0; i < len(s); i++ {
		if (s[i] < '0' || s[i] > '9') && (s[i] < 'a' || s[i] > 'f') {
			return false
		}
	}
	return true
}

func (s SIPSubscriber) check() error {
	switch {
	case !ValidSIPUser(s.User):
		return fmt.Errorf("%w: SIP user %q: use 1 to %d letters, digits, '.', '_', '-', '+' or '~'", ErrInvalid, s.User, MaxSIPUserLen)
	case s.Realm == "":
		return fmt.Errorf("%w: SIP user %s needs the realm its credentials were made for", ErrInvalid, s.User)
	case !lowerHex(s.HA1MD5, 32) || !lowerHex(s.HA1SHA256, 64):
		return fmt.Errorf("%w: SIP user %s: credentials must be MD5 and SHA-256 HA1s in lower-case hex", ErrInvalid, s.User)
	}
	return nil
}

func (s SIPSubscriber) sameContent(o SIPSubscriber) bool {
	return s.User == o.User && s.Realm == o.Realm && s.HA1MD5 == o.HA1MD5 && s.HA1SHA256 == o.HA1SHA256 && s.Disabled == o.Disabled
}

const sipSubscriberCols = `username, realm, ha1_md5, ha1_sha256, disabled, created_at, updated_at, version`

func scanSIPSubscriber(r rowScanner) (SIPSubscriber, error) {
	var (
		s                 SIPSubscriber
		created, modified int64
	)
	if err := r.Scan(&s.User, &s.Realm, &s.HA1MD5, &s.HA1SHA256, &s.Disabled, &created, &modified, &s.Version); err != nil {
		return SIPSubscriber{}, errNoRow(err)
	}
	s.CreatedAt, s.UpdatedAt = fromMs(created), fromMs(modified)
	return s, nil
}

// PutSIPSubscriber stores a subscriber, new or replacing the one of the
// same name (new credentials, or enabled or disabled again), and returns
// it as stored; created says it is new. Put again with the same content
// (a retry) it changes nothing, not even the version. Errors: ErrInvalid.
func (db *DB) PutSIPSubscriber(ctx context.Context, s SIPSubscriber) (stored SIPSubscriber, created bool, err error) {
	if err := s.check(); err != nil {
		return SIPSubscriber{}, false, err
	}
	for range casAttempts {
		now := ms(db.now())
		stored, err := scanSIPSubscriber(db.w.QueryRowContext(ctx, `INSERT INTO sip_subscribers (`+sipSubscriberCols+`)
			VALUES ($1, $2, $3, $4, $5, $6, $6, 1)
			ON CONFLICT (username) DO NOTHING
			RETURNING `+sipSubscriberCols,
			s.User, s.Realm, s.HA1MD5, s.HA1SHA256, s.Disabled, now))
		if err == nil {
			return stored, true, nil
		}
		if !errors.Is(err, ErrNotFound) {
			return SIPSubscriber{}, false, keyed(err, "create SIP subscriber", s.User)
		}
		stored, err = scanSIPSubscriber(db.w.QueryRowContext(ctx, `UPDATE sip_subscribers SET
			realm = $2, ha1_md5 = $3, ha1_sha256 = $4, disabled = $5, updated_at = $6, version = version + 1
			WHERE username = $1 AND (realm <> $2 OR ha1_md5 <> $3 OR ha1_sha256 <> $4 OR disabled <> $5)
			RETURNING `+sipSubscriberCols,
			s.User, s.Realm, s.HA1MD5, s.HA1SHA256, s.Disabled, now))
		if err == nil {
			return stored, false, nil
		}
		if !errors.Is(err, ErrNotFound) {
			return SIPSubscriber{}, false, keyed(err, "update SIP subscriber", s.User)
		}
		// Nothing written: the content is there already, or the row went
		// between the two statements (try again).
		cur, err := db.SIPSubscriber(ctx, s.User)
		switch {
		case errors.Is(err, ErrNotFound):
			continue
		case err != nil:
			return SIPSubscriber{}, false, err
		case cur.sameContent(s):
			return cur, false, nil
		}
	}
	return SIPSubscriber{}, false, fmt.Errorf("%w: SIP subscriber %s kept changing under %d attempts to store it", ErrConflict, s.User, casAttempts)
}

// SIPSubscriber reads one subscriber. Errors: ErrNotFound.
func (db *DB) SIPSubscriber(ctx context.Context, user string) (SIPSubscriber, error) {
	s, err := scanSIPSubscriber(db.r.QueryRowContext(ctx, "SELECT "+sipSubscriberCols+" FROM sip_subscribers WHERE username = $1", user))
	return s, keyed(err, "read SIP subscriber", user)
}

// SIPSubscribers lists subscribers by name, at most limit (0: all) of
// those after the name after ("" from the first): a page.
func (db *DB) SIPSubscribers(ctx context.Context, after string, limit int) ([]SIPSubscriber, error) {
	q := "SELECT " + sipSubscriberCols + " FROM sip_subscribers WHERE username > $1 ORDER BY username"
	if limit > 0 {
		return list(ctx, db.r, scanSIPSubscriber, q+" LIMIT $2", after, limit)
	}
	return list(ctx, db.r, scanSIPSubscriber, q, after)
}

// DisableSIPSubscriber disables a subscriber and returns it as stored: it
// can no longer register or call. Disabling a disabled subscriber changes
// nothing. Errors: ErrNotFound.
func (db *DB) DisableSIPSubscriber(ctx context.Context, user string) (SIPSubscriber, error) {
	s, err := scanSIPSubscriber(db.w.QueryRowContext(ctx, `UPDATE sip_subscribers SET
		disabled = TRUE, updated_at = $2, version = version + 1
		WHERE username = $1 AND disabled = FALSE
		RETURNING `+sipSubscriberCols, user, ms(db.now())))
	if errors.Is(err, ErrNotFound) {
		return db.SIPSubscriber(ctx, user)
	}
	return s, keyed(err, "disable SIP subscriber", user)
}
