// Package op is stile's OpenID provider: zitadel/oidc's op.Provider over
// stile's storage and keys.
//
// The library parses and validates protocol requests and mints and signs
// tokens. stile implements its op.Storage (storage.go and the files beside
// it) and owns what the library leaves open or gets wrong:
//
//   - the discovery document, precomputed, listing exactly what stile
//     supports (discovery.go);
//   - PKCE policy: S256 only, required for public clients and by default for
//     confidential ones (authrequest.go);
//   - single-use authorization codes, redeemed atomically; a replayed code
//     revokes what it issued (authrequest.go);
//   - the callback, answered only for the browser the login is bound to and
//     only once (http.go);
//   - Cache-Control: no-store on token responses, RFC 6750 errors at
//     userinfo, an HTML page where /authorize must not redirect (http.go);
//   - a CORS policy that names registered origins and never allows
//     credentials (cors.go);
//   - the uid, roles and attributes claims (claims.go).
//
// The library is imported as zop, so "op" in this package means stile's.
// op never imports login: the login's callback URL and browser check are
// wired together in cmd.
package op
