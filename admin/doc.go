// Package admin is the management API, /api/v1: a thin HTTP door onto the
// account service (users, their sessions and second factors) and onto the
// store (clients, the audit trail), for CMS backends and scripts.
//
// Every route but the OpenAPI document needs a client_credentials access
// token with the stile:admin scope; the caller is the token's client, which
// the audit trail records as the actor. Bodies are JSON in and out; every
// error is an RFC 9457 problem (application/problem+json), made in one
// function (problem.go) from the account service's error kinds.
//
//	GET    /api/v1/openapi.json                     the document (openapi.json), no token
//	POST   /api/v1/users                            create (201, Location, ETag; enrollment link without a password)
//	GET    /api/v1/users                            search: username_prefix, email_prefix, role, attribute, disabled, limit, cursor
//	POST   /api/v1/users:import                     JSON Lines import (account.Import), a report
//	GET    /api/v1/users/by-username/{username}     read
//	GET    /api/v1/users/by-email/{email}           read
//	GET    /api/v1/users/{id}                       read (ETag)
//	PATCH  /api/v1/users/{id}                       RFC 7396 merge patch (If-Match)
//	PUT    /api/v1/users/{id}                       replace the profile (If-Match)
//	DELETE /api/v1/users/{id}                       delete
//	PUT    /api/v1/users/{id}/password              set the password
//	POST   /api/v1/users/{id}/disable|enable        ...
//	GET    /api/v1/users/{id}/sessions              sessions and live grants; DELETE ends them all
//	GET    /api/v1/users/{id}/factors               second-factor state
//	DELETE /api/v1/users/{id}/factors/{which}       totp, recovery_codes or all
//	POST   /api/v1/users/{id}/enrollment-link       a single-use enrolment link
//	GET    /api/v1/clients, /api/v1/clients/{id}    read (never a secret or its digest)
//	GET    /api/v1/events                           the audit trail: user, client, type, since, until, limit, cursor
//
// The paths are a public contract; openapi.json describes each of them and
// the tests hold the router, the document and real responses to each other.
package admin
