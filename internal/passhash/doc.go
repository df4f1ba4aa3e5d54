// Package passhash verifies passwords against hashes that other systems
// made, so accounts can move to stile without their users choosing new
// passwords: bcrypt ($2a$, $2b$, $2y$; Strapi, Laravel, Drupal ≥ 10.1),
// WordPress 6.8's $wp$ (bcrypt over an HMAC-SHA384 of the password),
// Django's pbkdf2_sha256$ and argon2$, Drupal 7's $S$ (phpass with
// SHA-512, and its U$ form for upgraded MD5 passwords), phpass portable
// $P$ and $H$ (WordPress before 6.8, phpBB, older Drupal), and PHC
// $argon2id$ / $argon2i$ strings.
//
// The login keeps only stile's own argon2id. An imported hash is verified
// here once, on its user's first successful sign-in, and replaced then
// (login.Flow does the replacing). So the package only verifies: it never
// makes a legacy hash.
//
// Every format carries its own cost, and the cost is the attacker's lever:
// an imported hash with bcrypt cost 31 or phpass 2^30 rounds would make one
// sign-in attempt take minutes of CPU. Scheme and Verify refuse parameters
// above a bound (see Limits) a little above what the originating systems
// use today, so such a hash is refused when it is imported, not when an
// anonymous caller tries a password against it.
//
// Comparisons are constant time (crypto/subtle, or bcrypt's own) for every
// format.
package passhash
