# contiv-rs: the two commands of the README, plus the benchmarks.
#   make demo   installs what is needed, builds, and runs the demo
#   make test   installs what is needed, builds, and runs every test
#   make bench  runs the benchmarks (not part of make test)
SHELL := /bin/bash

.PHONY: deps build demo test bench fmt lint clean

deps:
	scripts/install-deps.sh

build: deps
	cargo build --workspace --all-targets

demo: deps
	scripts/demo.sh

test: deps
	scripts/test.sh

bench: deps
	scripts/bench.sh

fmt:
	cargo fmt --all

lint:
	cargo fmt --all -- --check
	cargo clippy --workspace --all-targets -- -D warnings

clean:
	cargo clean
