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
// Signing keys are RSA-2048 (RS256), generated once, sealed in the
// database, and published as a JWKS with kid, use and alg. The schema allows
// one active key, so instances that start together agree on it.
package keys
