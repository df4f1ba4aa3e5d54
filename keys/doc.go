// Package keys holds stile's secrets: the master key and what is derived
// from it, and the token-signing keys.
//
// The master key comes from a file (mode 0600), never from the database; the
// database keeps only a check value, so a wrong or missing key is refused at
// start instead of silently replaced. Every use of the master key goes
// through its own HKDF sub-key: sealing secrets at rest (AES-256-GCM with
// AAD naming table, column and row), the provider's token encryption, cookie
// MACs, HMAC peppers.
//
// Signing keys are RSA-2048 (RS256), P-256 (ES256) or Ed25519 (EdDSA),
// sealed in the database (PKCS #8) and published as a JWKS with kid, use
// and alg. One active key per algorithm: the default's, and one for each
// algorithm a client pins. The schema allows one active and one next key per
// algorithm and one default, so instances that start together agree on them.
package keys
