# stile — the two commands a newcomer needs are `make run` and `make test`.
SHELL := /bin/bash
.SHELLFLAGS := -o pipefail -ec
GO ?= go

.PHONY: run install test fuzz build lint interop-deps bench

# What `stile version` says: stamped into every build and install.
VERSION ?= $(shell git describe --tags --always --dirty 2>/dev/null || echo dev)
COMMIT  ?= $(shell git rev-parse --short=12 HEAD 2>/dev/null)
DATE    ?= $(shell date -u +%Y-%m-%dT%H:%M:%SZ)
# Pure Go (the SQLite driver is too), so the binary is static.
BUILDFLAGS := -trimpath -ldflags "-s -w -X main.version=$(VERSION) -X main.commit=$(COMMIT) -X main.date=$(DATE)"

# Start stile on http://localhost:8080 over an embedded SQLite file, with a
# demo client and user; it prints how to sign in.
run:
	$(GO) run ./cmd/stile serve --demo

# Every test, PostgreSQL included: the test helper starts a throwaway cluster
# from the machine's PostgreSQL binaries (or uses STILE_TEST_DATABASE_URL).
# Verbose output, minus the noise of passing tests, so the log shows the
# PostgreSQL version tested against and every failure in full.
test: lint interop-deps fuzz
	$(GO) test -count=1 -timeout 60m -v ./... 2>&1 | grep -vE '^\s*(=== (RUN|PAUSE|CONT|NAME)|--- PASS|PASS$$)'

# Each fuzz target for a bounded number of inputs (go runs one -fuzz target
# per invocation): about 10 s each on 2 cores. A count, not a duration: Go
# 1.26's fuzz coordinator can report a spurious "context deadline exceeded"
# when a duration ends (golang/go#75804, fixed in Go 1.27). A crasher is
# written to cmd/stile/testdata/fuzz/<target>/: commit it with its fix, and
# plain `go test` runs it from then on. `make fuzz FUZZTIME=5m` fuzzes longer.
FUZZTIME ?= 20000x
FUZZ_TARGETS := FuzzLoginAPI FuzzLoginForms FuzzToken FuzzDirect
fuzz:
	for t in $(FUZZ_TARGETS); do $(GO) test ./cmd/stile -run '^$$' -fuzz "^$$t\$$" -fuzztime $(FUZZTIME); done

# The real OpenID clients of the interop tests (openid-client, oidc-client-ts,
# playwright-core), from the committed lockfile. The tests need Node.js 20+
# and Debian's chromium (apt-get install chromium); no browser is downloaded.
interop-deps: testdata/interop/node_modules/.package-lock.json

testdata/interop/node_modules/.package-lock.json: testdata/interop/package-lock.json
	cd testdata/interop && npm ci --no-audit --no-fund

# bin/stile, static, with the version stamped.
build:
	CGO_ENABLED=0 $(GO) build $(BUILDFLAGS) -o bin/stile ./cmd/stile

# stile on the PATH: into $(go env GOBIN), or $(go env GOPATH)/bin.
install:
	CGO_ENABLED=0 $(GO) install $(BUILDFLAGS) ./cmd/stile
	@bin="$$($(GO) env GOBIN)"; bin="$${bin:-$$($(GO) env GOPATH)/bin}"; \
	echo "installed $$bin/stile"; \
	case ":$$PATH:" in *":$$bin:"*) ;; *) echo "add it to your PATH:  export PATH=\"$$bin:\$$PATH\"";; esac

lint:
	@unformatted="$$(gofmt -l .)"; if [ -n "$$unformatted" ]; then echo "gofmt would change:"; echo "$$unformatted"; exit 1; fi
	$(GO) vet ./...
	$(GO) run honnef.co/go/tools/cmd/staticcheck@v0.8.2 ./...

# The load driver's matrix (issue 10): stile pinned to CPU 1, the driver to
# CPU 0, SQLite and a throwaway PostgreSQL cluster, RS256, ES256 and EdDSA;
# about 10 minutes on 2 cores. Prints each run's table, then a summary with
# the targets as PASS/MISS; the JSON reports go to BENCH_OUT (default: a new
# temporary directory, printed). Longer: make bench BENCH_ARGS='-requests 3000'.
BENCH_ARGS ?=
bench:
	$(GO) build -o bin/stile ./cmd/stile
	$(GO) build -o bin/stile-bench ./cmd/stile-bench
	cmd/stile-bench/matrix.sh bin $(BENCH_ARGS)
