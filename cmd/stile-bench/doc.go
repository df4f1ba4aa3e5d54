// Command stile-bench is stile's load driver (issue 10, item 4): it signs
// users in through the real pages, silently through the SSO cookie,
// refreshes with rotation, asks for client_credentials tokens, calls
// userinfo, introspection, discovery and JWKS, each at several
// concurrencies, against an issuer on loopback only.
//
// It is bounded twice: a number of requests per step (-requests, and
// -signin-requests for the argon2id-bound sign-in) and a time cap per step
// (-duration). It provisions its own users and clients through the stile CLI
// against the server's database (exec, the public way an operator would) and
// cleans them up afterwards, Ctrl-C included.
//
// Why the report has the shape it has: absolute times on a shared machine
// mean little, so every scenario states its overhead ratio — the server's
// CPU per request (from /proc when the server is local) divided by the CPU
// of the cryptography the request cannot avoid (its signatures and, for a
// sign-in, one argon2id), both measured in the same run. The primitives are
// measured in this process with Go's crypto, as the server does them.
//
// Modes:
//
//	stile-bench -issuer URL -database DB [-secret-file F]   drive a running server
//	stile-bench -launch -database DB -alg ES256              start stile serve itself (pinned
//	                                                         with -server-cpus), measure ready
//	                                                         time and RSS, drive it, stop it
//	stile-bench -summary a.json b.json …                     one table and the targets for runs
package main
