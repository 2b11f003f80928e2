package digest

import (
	"crypto/md5"
	"crypto/sha256"
	"crypto/subtle"
	"encoding/hex"
	"hash"
	"strings"
)

// Algorithm is a digest algorithm (RFC 8760 §2). The "-sess" variants are
// not offered.
type Algorithm string

// The algorithms a server offers, SHA-256 preferred.
const (
	SHA256 Algorithm = "SHA-256"
	MD5    Algorithm = "MD5"
)

// ParseAlgorithm reads an algorithm parameter; "" is MD5 (RFC 7616 §3.3).
// ok is false for one this package does not check.
func ParseAlgorithm(s string) (Algorithm, bool) {
	switch {
	case s == "", strings.EqualFold(s, string(MD5)):
		return MD5, true
	case strings.EqualFold(s, string(SHA256)):
		return SHA256, true
	}
	return "", false
}

func (a Algorithm) hash() hash.Hash {
	if a == SHA256 {
		return sha256.New()
	}
	return md5.New()
}

// h is H(parts joined by ':') in lower-case hex.
func (a Algorithm) h(parts ...string) string {
	d := a.hash()
	for i, p := range parts {
		if i > 0 {
			d.Write([]byte{':'})
		}
		d.Write([]byte(p))
	}
	return hex.EncodeToString(d.Sum(nil))
}

// HA1 is H(user:realm:password), what a server keeps instead of the
// password.
func HA1(a Algorithm, user, realm, password string) string { return a.h(user, realm, password) }

// Response is the request-digest of RFC 7616 §3.4.1 for qop=auth:
// H(HA1:nonce:nc:cnonce:qop:H(method:uri)).
func Response(a Algorithm, ha1, nonce, nc, cnonce, qop, method, uri string) string {
	return a.h(ha1, nonce, nc, cnonce, qop, a.h(method, uri))
}

// equal compares two digests in constant time.
func equal(a, b string) bool {
	return subtle.ConstantTimeCompare([]byte(strings.ToLower(a)), []byte(b)) == 1
}
