# Gwook: `make run` serves on :4000, `make test` runs every test.

GO          ?= go
VERSION     ?= $(shell git describe --tags --always --dirty 2>/dev/null || echo dev)
IMAGE       ?= gwook
STATICCHECK ?= honnef.co/go/tools/cmd/staticcheck@v0.8.2
LDFLAGS     := -s -w -X main.version=$(VERSION)

.PHONY: all build build-gwook run test lint fuzz docker-build docker-run clean

all: lint test build

## build: static binaries for gwook and the Svix-compatible test server in bin/
build: build-gwook
	CGO_ENABLED=0 $(GO) build -trimpath -o bin/svix-test-server ./cmd/svix-test-server

## build-gwook: bin/gwook alone (a first build takes about 3 minutes on 2 cores; the test server as much again)
build-gwook:
	CGO_ENABLED=0 $(GO) build -trimpath -ldflags "$(LDFLAGS)" -o bin/gwook ./cmd/gwook

## run: gwook on :4000, delivering webhooks itself from SQLite in ./data unless SVIX_AUTH_TOKEN is set (then through Svix); Ctrl-C stops it
run: build-gwook
	scripts/run-local

## test: start the Pub/Sub emulator, Redis and PostgreSQL where they do not answer, run every test, stop what was started
test:
	scripts/test

## lint: gofmt, go vet and staticcheck
lint:
	@out=$$(gofmt -l $$(git ls-files '*.go')); if [ -n "$$out" ]; then echo "gofmt would change:"; echo "$$out"; exit 1; fi
	$(GO) vet ./...
	$(GO) run $(STATICCHECK) ./...

## bench: load test on this machine; writes reports/bench.md and reports/bench.json
.PHONY: bench
bench:
	scripts/bench

## bench-direct: load test of direct delivery on PostgreSQL and SQLite; writes reports/bench-direct.md and reports/bench-direct.json
.PHONY: bench-direct
bench-direct:
	scripts/bench-direct

## soak: a few minutes of events under injected faults; fails on any lost or duplicated event
.PHONY: soak
soak:
	scripts/soak

## proto: regenerate proto/gwook/v1/event.pb.go from event.proto (buf from the Go module proxy, protoc-gen-go from go.mod; no Buf Schema Registry)
.PHONY: proto
proto:
	$(GO) generate ./proto/...

## fuzz: run each fuzz target for FUZZTIME (default 30s)
fuzz:
	FUZZTIME=$${FUZZTIME:-30s} scripts/fuzz

docker-build:
	docker build --build-arg VERSION=$(VERSION) -t $(IMAGE):$(VERSION) -t $(IMAGE):latest .

## docker-run: the image on :4000, configured by .env (a copy of .env.example; ENV_FILE names another)
docker-run:
	@test -f "$${ENV_FILE:-.env}" || { echo "docker-run: no $${ENV_FILE:-.env}: copy .env.example to .env and fill it in" >&2; exit 1; }
	docker run --rm -p 4000:4000 --env-file "$${ENV_FILE:-.env}" $(IMAGE):latest

clean:
	rm -rf bin
