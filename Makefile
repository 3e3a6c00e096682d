# omics-worker — developer entry points. `make help` lists them.
GO        ?= go
BIN       ?= bin/omics-worker
PKGS      ?= ./...
VERSION   ?= $(shell git describe --tags --always --dirty 2>/dev/null || echo dev)
LDFLAGS   := -s -w -X main.version=$(VERSION)
FUZZTIME  ?= 30s

.PHONY: help build test test-short race vet fmt lint bench bench-convert demo fuzz chaos ci clean

help: ## list targets
	@grep -E '^[a-z-]+:.*## ' $(MAKEFILE_LIST) | sed 's/:.*## /\t/' | expand -t 16

build: ## build the static binary into bin/
	CGO_ENABLED=0 $(GO) build -trimpath -ldflags '$(LDFLAGS)' -o $(BIN) ./cmd/omics-worker

test: ## all tests (unit, golden, integration, interop, celery 5.2 and 5.5) with the race detector; scans the log for the test secret
	GO=$(GO) ./scripts/test.sh $(PKGS)

test-short: ## unit, golden and fuzz-seed tests only (no services needed)
	$(GO) test -short -count=1 $(PKGS)

vet: ## go vet
	$(GO) vet $(PKGS)

fmt: ## gofmt check
	@out=$$(gofmt -l $$(git ls-files '*.go')); if [ -n "$$out" ]; then echo "gofmt needed:"; echo "$$out"; exit 1; fi

lint: ## golangci-lint (v2, config in .golangci.yml)
	golangci-lint run $(PKGS)

bench: build ## Go worker vs Python worker on the same Redis and the same RabbitMQ, plus micro-benchmarks
	./scripts/bench.sh

bench-convert: ## converter throughput and memory vs the Python converters
	./scripts/bench-convert.sh

demo: build ## end-to-end demo: real worker, Redis, PostgreSQL, local storage
	./scripts/demo.sh

fuzz: ## run every fuzz target for FUZZTIME each
	./scripts/fuzz.sh $(FUZZTIME)

chaos: build ## crash/restart test: SIGKILLs and a Redis restart, nothing lost
	@mkdir -p bench-results; OMICS_CHAOS=long $(GO) test -v -count=1 -run Chaos -timeout 30m ./cmd/omics-worker/ >bench-results/chaos.log 2>&1; rc=$$?; \
	grep -E '^(chaos|--- |ok|FAIL)|SIGKILL|restarted' bench-results/chaos.log; echo "full log: bench-results/chaos.log"; exit $$rc

ci: fmt vet test ## what .ci/run runs after installing dependencies

clean:
	rm -rf bin
