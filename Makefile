# The two set-up commands are `make demo` and `make test`; each installs what
# it needs on a fresh Debian machine with Go.
GO        ?= go
BIN       := bin
PKGS      := ./...
FUZZTIME  ?= 5000x

.PHONY: all build test test-unit test-docker test-deploy deploy-manifests fuzz bench lint vet demo deps test-deps clean

all: build

build:
	$(GO) build -o $(BIN)/ ./cmd/...

deps:
	@scripts/ensure-postgres.sh

# The tests also need promtool (alert-rule tests) and Prometheus.
test-deps: deps
	@scripts/ensure-prometheus.sh

vet:
	$(GO) vet $(PKGS)

lint: vet
	@out=$$(gofmt -l $$(git ls-files '*.go' 2>/dev/null || find . -name '*.go')); \
	if [ -n "$$out" ]; then echo "gofmt needed:"; echo "$$out"; exit 1; fi

# The whole suite: vet, gofmt, unit + integration tests against a real
# PostgreSQL, an in-process NATS and the MongoDB emulator, the MongoDB
# change-stream specification tests, and a short run of every fuzz target.
test: test-deps lint
	$(GO) test -count=1 -timeout 30m $(PKGS)
	$(MAKE) test-deploy
	$(MAKE) fuzz

# The same test bodies against a real mongo:8 replica set in Docker.
test-docker: deps
	REPLICATOR_TEST_MONGO=docker $(GO) test -count=1 -timeout 30m $(PKGS)

fuzz:
	@scripts/fuzz.sh $(FUZZTIME)

# The deployment files: helm lint and render the chart (Helm's Go packages),
# decode every object into its Kubernetes API type, check the restricted Pod
# Security Standard, the Dockerfile, and that deploy/kubernetes/ is the chart's
# current rendering. A module of its own, so Helm stays out of go.mod.
test-deploy:
	cd deploy/deploytest && $(GO) test -count=1 ./...

# Rewrites deploy/kubernetes/*.yaml and the chart's copy of the alert rules.
deploy-manifests:
	cd deploy/deploytest && $(GO) test -count=1 -run TestManifests . -args -update

bench: deps
	$(GO) test -run '^$$' -bench . -timeout 60m $(PKGS)

demo: deps
	$(GO) run ./cmd/demo

clean:
	rm -rf $(BIN) .demo
