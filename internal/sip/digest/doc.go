// Package digest is the server side of SIP digest authentication (RFC
// 3261 §22, RFC 7616, RFC 8760): challenges for SHA-256 and MD5 with
// qop=auth, nonces signed with a key every node of a platform shares (so
// a challenge one node issued is answered through another), credentials
// parsed and checked against a subscriber's HA1, and nonce counts checked
// against replay through a counter the platform shares (Counter).
//
// sipgo has only the client side; this is the other. It imports no
// Convene package: the SIP edge gives it the subscriber lookup and the
// counter.
package digest
