# Chorus — build, test and run. `make help` lists the targets.
SHELL := /bin/bash
CARGO ?= cargo

.PHONY: help deps build test lint fmt demo ci

help: ## this list
	@grep -E '^[a-z-]+:.*## ' $(MAKEFILE_LIST) | awk -F':.*## ' '{printf "  make %-8s %s\n", $$1, $$2}'

deps: ## install what a fresh Debian machine lacks (libclang for RocksDB); skips what is there
	@if ! ls /usr/lib/llvm-*/lib/libclang.so* >/dev/null 2>&1 && ! ldconfig -p | grep -q libclang; then \
		echo "installing libclang-dev (RocksDB's build needs it)"; \
		SUDO=$$( [ "$$(id -u)" = 0 ] || echo sudo ); \
		$$SUDO apt-get update -qq && $$SUDO apt-get install -y -qq libclang-dev >/dev/null; \
	else echo "libclang: present"; fi

build: deps ## build everything (debug)
	$(CARGO) build --workspace --all-targets

test: deps ## run every test of the workspace
	@if $(CARGO) nextest --version >/dev/null 2>&1; then \
		$(CARGO) nextest run --workspace --no-fail-fast && $(CARGO) test --workspace --doc; \
	else \
		$(CARGO) test --workspace --no-fail-fast; \
	fi

lint: deps ## formatting and clippy, as CI checks them
	$(CARGO) fmt --all -- --check
	$(CARGO) clippy --workspace --all-targets -- -D warnings

fmt: ## format the code
	$(CARGO) fmt --all

demo: deps ## the main job for now: a real fork, held, switched, pruned and scrubbed on RocksDB
	$(CARGO) run -p ds-p2p --example fork_on_disk

ci: lint test ## what .ci/run does
