package main

import (
	"crypto"
	"crypto/ecdsa"
	"crypto/ed25519"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/rsa"
	"fmt"
	"syscall"
	"time"

	"github.com/go-jose/go-jose/v4"
	"golang.org/x/crypto/argon2"

	"github.com/stile-id/stile/login"
)

// primitives are the costs of the cryptography a request cannot avoid,
// measured in this process as CPU time per operation (not wall time, so a
// busy neighbour slows them without making them look dearer).
type primitives struct {
	Alg         string  `json:"alg"`
	KeyBits     int     `json:"key_bits,omitempty"`
	SignCPUms   float64 `json:"sign_cpu_ms"`
	Argon2      string  `json:"argon2id"`
	Argon2CPUms float64 `json:"argon2id_cpu_ms"`
	Argon2Floor float64 `json:"argon2id_floor_per_s"` // sign-ins a second one core could hash, nothing else
	SignSamples int     `json:"sign_samples"`
	HashSamples int     `json:"argon2id_samples"`
}

// selfCPU is this process's CPU time so far, every thread included: Go's
// argon2 runs its lanes on goroutines of their own.
func selfCPU() time.Duration {
	var ru syscall.Rusage
	if err := syscall.Getrusage(syscall.RUSAGE_SELF, &ru); err != nil {
		return 0
	}
	return time.Duration(ru.Utime.Nano() + ru.Stime.Nano())
}

// cpuPerOp runs op until it has used at least budget of CPU (and at least
// minOps times) and returns the CPU per run.
func cpuPerOp(budget time.Duration, minOps int, op func() error) (time.Duration, int, error) {
	// One run unmeasured: the first pays for the heap growing to hold it
	// (page faults), which a long-running server has paid already.
	if err := op(); err != nil {
		return 0, 0, err
	}
	start := selfCPU()
	n := 0
	for n < minOps || selfCPU()-start < budget {
		if err := op(); err != nil {
			return 0, n, err
		}
		n++
	}
	return (selfCPU() - start) / time.Duration(n), n, nil
}

// sampleClaims is a typical ID token's payload, as keys/sign_bench_test.go
// signs it.
var sampleClaims = []byte(`{"iss":"https://id.example.com","sub":"5f0c7a8e-2a5b-4b8e-9d7e-1c2f3a4b5c6d","aud":["app"],` +
	`"exp":1767225600,"iat":1767225000,"auth_time":1767225000,"amr":["pwd","otp","mfa"],"azp":"app",` +
	`"uid":"5f0c7a8e-2a5b-4b8e-9d7e-1c2f3a4b5c6d","roles":["editor"],"attributes":{"team":"news"}}`)

// signingKey makes a key of the server's algorithm and size.
func signingKey(alg string, rsaBits int) (crypto.Signer, error) {
	switch alg {
	case "RS256":
		return rsa.GenerateKey(rand.Reader, cmpOr(rsaBits, 2048))
	case "ES256":
		return ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	case "EdDSA":
		_, k, err := ed25519.GenerateKey(rand.Reader)
		return k, err
	}
	return nil, fmt.Errorf("signature: unknown algorithm %q", alg)
}

// measureSignature is one JWS signature as the provider makes one: a
// signer built per token (the library's op.SignerFromKey does that) over a
// typical ID token.
func measureSignature(alg string, rsaBits int, budget time.Duration) (time.Duration, int, error) {
	k, err := signingKey(alg, rsaBits)
	if err != nil {
		return 0, 0, err
	}
	key := jose.SigningKey{Algorithm: jose.SignatureAlgorithm(alg), Key: &jose.JSONWebKey{Key: k, KeyID: "bench"}}
	return cpuPerOp(budget, 20, func() error {
		s, err := jose.NewSigner(key, (&jose.SignerOptions{}).WithType("JWT"))
		if err == nil {
			_, err = s.Sign(sampleClaims)
		}
		return err
	})
}

// measureArgon2 is one argon2id hash with the given parameters, as a
// password check makes it.
func measureArgon2(p login.Argon2id, budget time.Duration) (time.Duration, int, error) {
	salt := make([]byte, 16)
	rand.Read(salt)
	return cpuPerOp(budget, 3, func() error {
		argon2.IDKey([]byte("correct horse battery staple"), salt, p.Time, p.Memory, p.Threads, 32)
		return nil
	})
}

// parseArgon2 reads "m=65536,t=2,p=1" (the PHC parameter string).
func parseArgon2(s string) (login.Argon2id, error) {
	var p login.Argon2id
	if _, err := fmt.Sscanf(s, "m=%d,t=%d,p=%d", &p.Memory, &p.Time, &p.Threads); err != nil {
		return p, fmt.Errorf("-argon2id %q: want m=KiB,t=N,p=N: %w", s, err)
	}
	if p.Memory < 8 || p.Time < 1 || p.Threads < 1 {
		return p, fmt.Errorf("-argon2id %q: m, t and p must be positive", s)
	}
	return p, nil
}

func argon2String(p login.Argon2id) string {
	return fmt.Sprintf("m=%d,t=%d,p=%d", p.Memory, p.Time, p.Threads)
}

// measurePrimitives measures the server's signature and argon2id.
func measurePrimitives(alg string, rsaBits int, p login.Argon2id) (primitives, error) {
	sign, ns, err := measureSignature(alg, rsaBits, 300*time.Millisecond)
	if err != nil {
		return primitives{}, err
	}
	hash, nh, err := measureArgon2(p, time.Second)
	if err != nil {
		return primitives{}, err
	}
	pr := primitives{Alg: alg, SignCPUms: ms(sign), Argon2: argon2String(p), Argon2CPUms: ms(hash),
		SignSamples: ns, HashSamples: nh}
	if alg == "RS256" {
		pr.KeyBits = cmpOr(rsaBits, 2048)
	}
	if hash > 0 {
		pr.Argon2Floor = float64(time.Second) / float64(hash)
	}
	return pr, nil
}

func cmpOr(v, def int) int {
	if v == 0 {
		return def
	}
	return v
}
