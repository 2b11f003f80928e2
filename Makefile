GO      ?= go
BIN     := bin/convene
PKGS    := ./...

.PHONY: all build run test bench deps vet fmt-check fuzz clean

all: build

build:
	$(GO) build -o $(BIN) ./cmd/convene

# The platform on embedded defaults: in-process NATS and store, 3 simulated
# media nodes. Prints the API address and token.
run: build
	./$(BIN) serve --sim-nodes 3

# Installs the real servers and peers the tests start (redis-server,
# PostgreSQL, nats-server, sipp, Kamailio, Chromium), then checks
# formatting, vets and runs every test with the race detector. Four test
# binaries run at once: most tests wait on the network and timers, not on
# the CPU.
test: deps fmt-check vet
	$(GO) test -race -count=1 -p 4 -timeout 20m $(PKGS)
	./scripts/fuzz-brief.sh

# A few seconds of fuzzing for each decoder of outside input.
fuzz:
	./scripts/fuzz-brief.sh

deps:
	./scripts/install-deps.sh

fmt-check:
	@out=$$(gofmt -l $$(git ls-files '*.go' 2>/dev/null || find . -name '*.go')); \
	if [ -n "$$out" ]; then echo "gofmt would change:"; echo "$$out"; exit 1; fi

vet:
	$(GO) vet $(PKGS)

bench: build
	./$(BIN) bench create

clean:
	rm -rf bin
