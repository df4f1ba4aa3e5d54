package account

import (
	"bufio"
	"bytes"
	"compress/gzip"
	_ "embed"
	"slices"
	"strings"
	"sync"
)

// The breached-password list (ASVS 5.0 6.2.4 and 6.2.12, NIST SP 800-63B
// 5.1.1.2): a new password that is one of the most common passwords seen
// in leaks is refused on every door, since CheckPasswordPolicy is the one
// rule every door that sets a plain password goes through.
//
// common_passwords.txt.gz is the "passwords" frequency list of the npm
// package @zxcvbn-ts/language-common 4.1.3 (src/passwords.json, SHA-256
// f422773d94d630f27e08b26d7017e847bb1feb2a84809340e9c0b0c47b33e3f1; MIT
// licence, common_passwords.LICENSE), which zxcvbn ranks by how often each
// password appears in leaked-password corpora. Of its 49,233 entries (all
// lower case) only those of at least MinPasswordLength characters can pass
// the length rule, so only those are kept: 17,950 entries, sorted, 64 KB
// gzipped. Made with:
//
//	npm pack @zxcvbn-ts/language-common@4.1.3 && tar xzf zxcvbn-ts-language-common-4.1.3.tgz
//	node -e 'const p=require("./package/src/passwords.json");
//	  const s=[...new Set(p.filter(x=>[...x].length>=8))].sort();
//	  process.stdout.write(s.join("\n")+"\n")' | gzip -9n > common_passwords.txt.gz
//
// A password is compared in lower case, so "Password1" counts as
// "password1". Hashes brought in by an import are not checked: nothing can
// read the password out of them.

//go:embed common_passwords.txt.gz
var commonPasswordsGz []byte

// commonPasswords is the list, read once on first use: a start that sets
// no password pays nothing for it.
var commonPasswords = sync.OnceValue(func() []string {
	zr, err := gzip.NewReader(bytes.NewReader(commonPasswordsGz))
	if err != nil {
		panic("account: the embedded common-password list is corrupt: " + err.Error())
	}
	out := make([]string, 0, 18000)
	sc := bufio.NewScanner(zr)
	for sc.Scan() {
		if w := sc.Text(); w != "" {
			out = append(out, w)
		}
	}
	if err := sc.Err(); err != nil {
		panic("account: the embedded common-password list is corrupt: " + err.Error())
	}
	slices.Sort(out) // sorted already; sorting again costs little and makes the search safe
	return out
})

// CommonPasswordCount is how many passwords the embedded list holds.
func CommonPasswordCount() int { return len(commonPasswords()) }

// IsCommonPassword reports whether password, in lower case, is on the
// embedded list of common (breached) passwords.
func IsCommonPassword(password string) bool {
	_, found := slices.BinarySearch(commonPasswords(), strings.ToLower(password))
	return found
}
