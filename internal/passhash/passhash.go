package passhash

import (
	"errors"
	"fmt"
	"strings"
)

// Errors that Scheme and Verify wrap. The text never includes the hash.
var (
	ErrUnknown   = errors.New("unknown password hash format")
	ErrMalformed = errors.New("malformed password hash")
	ErrTooCostly = errors.New("password hash parameters over the work bound")
)

// Scheme names, as Scheme returns them.
const (
	Bcrypt          = "bcrypt"               // $2a$, $2b$, $2y$
	WordPressBcrypt = "wordpress-bcrypt"     // $wp$2y$: bcrypt of base64(HMAC-SHA384(password))
	DjangoPBKDF2    = "django-pbkdf2-sha256" // pbkdf2_sha256$iterations$salt$hash
	DjangoArgon2    = "django-argon2"        // argon2$argon2id$v=19$…
	Argon2          = "argon2"               // PHC $argon2id$ or $argon2i$
	DrupalSHA512    = "drupal-sha512"        // $S$ (Drupal 7 to 10.0)
	DrupalMD5SHA512 = "drupal-md5-sha512"    // U$S$: an MD5 from Drupal 6, re-hashed by Drupal 7
	PhpassMD5       = "phpass-md5"           // $P$ (WordPress < 6.8), $H$ (phpBB); Drupal's $P$/$H$ too
)

// Limits are the work bounds: the most expensive parameters a stored hash
// may ask for. Each is about ten times the cost of stile's own argon2id
// (a tenth of a second) at most, and above what the originating systems
// use by default today (noted beside each). Argon2's memory is bounded
// tighter than its time: the login's hashing pool budgets 64 MiB a check
// (login.Pool), and every guess at an imported hash, right or wrong, holds
// the hash's whole memory until the user's first sign-in replaces it;
// 128 MiB takes Django's and argon2-cffi's 100 MiB while keeping a full
// pool of such checks within twice its budget.
var Limits = struct {
	BcryptCost       int    // Laravel 12, PHP 8.4: 12; WordPress 6.8, Strapi: 10
	PBKDF2Iterations int    // Django 6.0: 1 200 000
	PhpassLog2       int    // WordPress: 8; Drupal 7: 15, Drupal 8–10.0: 16
	Argon2MemoryKiB  uint32 // Django, argon2-cffi: 102 400 (100 MiB); stile: 65 536
	Argon2Time       uint32 // Django: 2; argon2-cffi: 3
	Argon2Threads    uint8  // Django: 8
}{
	BcryptCost:       14,
	PBKDF2Iterations: 3_000_000,
	PhpassLog2:       20,
	Argon2MemoryKiB:  128 << 10, // see below
	Argon2Time:       10,
	Argon2Threads:    16,
}

// MaxPassword is the longest password Verify evaluates: stile's own bound
// (login.MaxPasswordLength). Longer ones are simply wrong, never hashed.
const MaxPassword = 1024

// format is one hash format: how to parse it and how to check a password.
type format struct {
	name   string
	prefix string
	parse  func(encoded string) (verifier, error)
}

// verifier checks a password against one parsed hash.
type verifier interface {
	verify(password string) bool
}

// formats is tried in order; the first whose prefix matches owns the hash.
var formats = []format{
	{WordPressBcrypt, "$wp$", parseWordPress},
	{Bcrypt, "$2a$", parseBcrypt},
	{Bcrypt, "$2b$", parseBcrypt},
	{Bcrypt, "$2y$", parseBcrypt},
	{DjangoPBKDF2, "pbkdf2_sha256$", parseDjangoPBKDF2},
	{DjangoArgon2, "argon2$", parseDjangoArgon2},
	{Argon2, "$argon2id$", parseArgon2},
	{Argon2, "$argon2i$", parseArgon2},
	{DrupalSHA512, "$S$", parseDrupal},
	{DrupalMD5SHA512, "U$S$", parseDrupalUpgraded},
	{PhpassMD5, "$P$", parsePhpass},
	{PhpassMD5, "$H$", parsePhpass},
}

func lookup(encoded string) (format, error) {
	for _, f := range formats {
		if strings.HasPrefix(encoded, f.prefix) {
			return f, nil
		}
	}
	return format{}, ErrUnknown
}

// Scheme names the format of encoded after checking that it parses and
// that its parameters are within Limits: what an import checks, with no
// password at hand. It computes no hash.
func Scheme(encoded string) (string, error) {
	f, err := lookup(encoded)
	if err != nil {
		return "", err
	}
	if _, err := f.parse(encoded); err != nil {
		return "", fmt.Errorf("%s: %w", f.name, err)
	}
	return f.name, nil
}

// Verify reports whether password matches encoded, in constant time. An
// error means the hash could not be evaluated (unknown, malformed or over
// the bound), not that the password is wrong.
func Verify(encoded, password string) (bool, error) {
	f, err := lookup(encoded)
	if err != nil {
		return false, err
	}
	v, err := f.parse(encoded)
	if err != nil {
		return false, fmt.Errorf("%s: %w", f.name, err)
	}
	if len(password) > MaxPassword {
		return false, nil
	}
	return v.verify(password), nil
}

func malformed(what string) error { return fmt.Errorf("%w: %s", ErrMalformed, what) }

func tooCostly(what string, got, limit any) error {
	return fmt.Errorf("%w: %s %v, at most %v", ErrTooCostly, what, got, limit)
}
