package keys_test

import (
	"bytes"
	"testing"
	"time"

	"github.com/go-jose/go-jose/v4"

	"github.com/stile-id/stile/keys"
	"github.com/stile-id/stile/storage/storagetest"
)

// BenchmarkSign measures one token signature per algorithm, as the
// provider makes it: a signer built from the key the Manager unsealed (the
// library builds one per token, op.SignerFromKey) and a JWS over a typical
// ID token's claims. The README's table of signing costs comes from it.
func BenchmarkSign(b *testing.B) {
	master, _ := keys.NewMaster(bytes.Repeat([]byte{3}, 32))
	claims := []byte(`{"iss":"https://id.example.com","sub":"5f0c7a8e-2a5b-4b8e-9d7e-1c2f3a4b5c6d","aud":["app"],` +
		`"exp":1767225600,"iat":1767225000,"auth_time":1767225000,"amr":["pwd","otp","mfa"],"azp":"app",` +
		`"uid":"5f0c7a8e-2a5b-4b8e-9d7e-1c2f3a4b5c6d","roles":["editor"],"attributes":{"team":"news"}}`)
	for _, alg := range []string{"RS256", "ES256", "EdDSA"} {
		b.Run(alg, func(b *testing.B) {
			m := keys.NewManager(storagetest.Open(b, storagetest.SQLite(b)), keys.NewSealer(master), time.Now, 10*time.Minute)
			if err := m.Ensure(b.Context(), alg); err != nil {
				b.Fatal(err)
			}
			s, err := m.Active(b.Context())
			if err != nil || string(s.Algorithm) != alg {
				b.Fatalf("active key %v, %v; want %s", s, err, alg)
			}
			key := jose.SigningKey{Algorithm: s.Algorithm, Key: &jose.JSONWebKey{Key: s.Key, KeyID: s.ID}}
			for b.Loop() {
				signer, err := jose.NewSigner(key, (&jose.SignerOptions{}).WithType("JWT"))
				if err != nil {
					b.Fatal(err)
				}
				if _, err := signer.Sign(claims); err != nil {
					b.Fatal(err)
				}
			}
		})
	}
}
