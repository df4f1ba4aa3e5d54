// Package metrics is stile's Prometheus instrumentation: one registry per
// application (tests run many in one process, so nothing is global), the
// counters the login and the provider report into, the HTTP middleware that
// times every request, and collectors for the hashing pool and the database
// pool.
//
// Labels are bounded by construction, because an anonymous caller chooses
// the paths and form values a server sees:
//
//   - route is the gorilla/mux template that matched ("/login/otp", never
//     "/login/otp?transactionID=…"); a prefix route is its prefix ("/" for
//     the provider's catch-all), except the few exact paths the caller names
//     (the library's "/keys"); "unmatched" when no route matched.
//   - method is one of the standard methods or "other"; code is the status.
//   - step, factor, outcome, grant, limit and door come from fixed sets in
//     login and op (login's error codes, its method names, the grants the
//     token endpoint accepts) — never a user, a client, an address or a path.
//
// login and op do not import this package: each declares a small Counter
// interface where it counts, and *Metrics satisfies both.
package metrics
