package digest

import (
	"crypto/hmac"
	"crypto/rand"
	"crypto/sha256"
	"encoding/base64"
	"encoding/binary"
	"errors"
	"time"
)

var (
	// ErrNonceInvalid: the nonce was not issued with this key.
	ErrNonceInvalid = errors.New("digest: nonce not issued here")
	// ErrNonceStale: the nonce is older than its lifetime.
	ErrNonceStale = errors.New("digest: nonce expired")
)

// A nonce is base64url(issued ms, 8 bytes | random, 8 bytes | the first
// 16 bytes of HMAC-SHA256(key, the 16 bytes before)). Every node of a
// platform signs with the same key, so any node checks any node's nonce
// without asking anyone; what must be shared, the counts used, goes
// through a Counter.
const (
	nonceRaw = 32
	nonceLen = 43 // base64url without padding
)

// Nonces makes and checks nonces signed with a key.
type Nonces struct {
	key []byte
	ttl time.Duration
	now func() time.Time
}

// NewNonces makes nonces with key that may be answered for ttl.
func NewNonces(key []byte, ttl time.Duration) *Nonces {
	return &Nonces{key: append([]byte(nil), key...), ttl: ttl, now: time.Now}
}

// TTL is how long a nonce may be answered.
func (n *Nonces) TTL() time.Duration { return n.ttl }

// New makes a nonce issued now.
func (n *Nonces) New() string {
	var raw [nonceRaw]byte
	binary.BigEndian.PutUint64(raw[:8], uint64(n.now().UnixMilli()))
	_, _ = rand.Read(raw[8:16])
	n.sign(raw[:])
	return base64.RawURLEncoding.EncodeToString(raw[:])
}

func (n *Nonces) sign(raw []byte) {
	m := hmac.New(sha256.New, n.key)
	m.Write(raw[:16])
	copy(raw[16:], m.Sum(nil)[:16])
}

// Check says when a nonce was issued. Errors: ErrNonceInvalid (not
// issued with this key), ErrNonceStale (older than the lifetime; issued
// is still set).
func (n *Nonces) Check(nonce string) (issued time.Time, err error) {
	if len(nonce) != nonceLen {
		return time.Time{}, ErrNonceInvalid
	}
	raw, err := base64.RawURLEncoding.DecodeString(nonce)
	if err != nil || len(raw) != nonceRaw {
		return time.Time{}, ErrNonceInvalid
	}
	want := make([]byte, nonceRaw)
	copy(want, raw[:16])
	n.sign(want)
	if !hmac.Equal(want[16:], raw[16:]) {
		return time.Time{}, ErrNonceInvalid
	}
	issued = time.UnixMilli(int64(binary.BigEndian.Uint64(raw[:8])))
	now := n.now()
	if now.Sub(issued) > n.ttl || issued.After(now.Add(time.Minute)) {
		return issued, ErrNonceStale
	}
	return issued, nil
}
