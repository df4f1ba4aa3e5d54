// Package conformance is a black-box test suite for OpenID providers that
// mirrors, module by module, what the OpenID Foundation's conformance suite
// checks in its Basic OP, Config OP and RP-initiated logout plans.
//
// It knows nothing of stile: it takes an issuer URL, the credentials of
// three registered clients (two with client_secret_basic, one with
// client_secret_post), and a LoginDriver that gets a user through the
// provider's login pages. Point it at any provider:
//
//	func TestConformance(t *testing.T) {
//		conformance.Run(t, conformance.Config{Issuer: "https://id.example.com", …})
//	}
//
// Each module runs as its own subtest, named after the official module
// (oidcc-server, oidcc-prompt-none-logged-in, …). A module fails where the
// official one would FAIL; what it would only WARN about is logged as a
// warning; a module the official suite would skip for the provider's
// configuration (e.g. unsigned request objects when discovery does not
// offer them) is skipped, with the reason.
//
// Waiting is a hook (Config.Wait): against a real provider it sleeps;
// against a provider whose clock a test controls, it steps that clock.
package conformance
