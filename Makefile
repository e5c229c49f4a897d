# spool: one entry point for everything a person does. `make help` lists it.
GO        ?= go
ROOT      ?= $(HOME)/.spool
ADDR      ?= 127.0.0.1:7878
FUZZTIME  ?= 20s
BENCH_SCALE ?= 1
# The race detector, without its pointer checks (checkptr) in modernc.org's
# SQLite: that is C translated to Go, whose pointer arithmetic checkptr
# re-checks on every step, a third of the CPU of the index-heavy tests.
# Our own packages keep the checks.
RACE      ?= -race -gcflags=modernc.org/...=-d=checkptr=0
export RACE

.PHONY: random help run build test lint fuzz bench bench-codex crash hostile compat ts-check test-distributed bench-distributed clean

help: ## list the targets
	@grep -E '^[a-z-]+:.*## ' $(MAKEFILE_LIST) | sed 's/:.*## /\t/'

build: ## build the binaries into bin/
	$(GO) build -o bin/ ./cmd/...

run: build ## start the server on 127.0.0.1:7878 with the data root ~/.spool
	./bin/spoold -root "$(ROOT)" -addr "$(ADDR)"

test: ## vet, every test with the race detector, then the memory checks without it
	$(GO) vet ./...
	$(GO) test $(RACE) -count=1 -timeout 20m ./...
	$(GO) test -count=1 -run 'Memory|Residency' ./indexer/ ./manager/ ./store/

lint: ## gofmt, go vet, staticcheck (also of the code behind the distributed, compat and randomized tags) and go mod tidy -diff
	@test -z "$$(gofmt -l .)" || (gofmt -l . && exit 1)
	$(GO) vet ./...
	$(GO) vet -tags distributed,compat,randomized ./...
	$(GO) tool staticcheck ./...
	$(GO) tool staticcheck -tags distributed,compat,randomized ./...
	$(GO) mod tidy -diff

fuzz: ## run each fuzz target for FUZZTIME
	./scripts/fuzz.sh $(FUZZTIME)

bench: ## run the reduced benchmarks (BENCH_SCALE=10 for full sizes), then the distributed backend's (make bench-distributed)
	BENCH_SCALE=$(BENCH_SCALE) ./scripts/bench.sh
	./scripts/test-distributed.sh bench

bench-codex: ## spool against the real Codex 0.169.0 on the same corpora (BENCH_CODEX_SCALE=10 for full sizes)
	./scripts/bench-codex.sh

crash: ## SIGKILL the server 25 times under load; then every failure point and a power loss after every operation
	./scripts/crash.sh

hostile: ## attack the real spoold as a hostile client would (docs/SECURITY.md), verbosely
	$(GO) test -count=1 -v ./hostiletest/

ts-check: ## type-check a TypeScript client generated from the served /openapi.json (npm packages cached outside the repo)
	./scripts/ts-check.sh

random: ## seeded random operation sequences, each checked against a rebuild, one in a drawn order, and Verify (SPOOL_RR_SEEDS, default 200; CI runs 1000); then manager's tests with 8 rebuilds in drawn orders each
	$(GO) test -tags randomized -count=1 -run TestRandomSequences -v ./manager/
	SPOOL_REBUILD_SHUFFLES=8 $(GO) test -count=1 ./manager/

compat: ## install Codex 0.169.0 (cached) and run the compat tests against it
	SPOOL_CODEX="$$(./scripts/codex.sh)" && export SPOOL_CODEX && $(GO) test -tags compat -count=1 ./compat/

test-distributed: ## start a private PostgreSQL on loopback, run the tests behind the distributed tag, stop it
	./scripts/test-distributed.sh

bench-distributed: ## the distributed backend's benchmarks beside the local backend (starts PostgreSQL and versitygw)
	./scripts/test-distributed.sh bench

clean: ## remove built binaries
	rm -rf bin/
