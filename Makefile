# Chorus — build, test and run. `make help` lists the targets.
SHELL := /bin/bash
CARGO ?= cargo

# RocksDB is ~300 C++ files; cargo rebuilds them whenever a build-time dependency's features
# change. ccache (installed by `make deps`) turns those rebuilds into cache hits.
ifneq ($(shell command -v ccache),)
ifeq ($(origin CC),default)
export CC := ccache cc
endif
ifeq ($(origin CXX),default)
export CXX := ccache c++
endif
endif

.PHONY: help deps build test properties lint fmt demo fork-demo ci

help: ## this list
	@grep -E '^[a-z-]+:.*## ' $(MAKEFILE_LIST) | awk -F':.*## ' '{printf "  make %-8s %s\n", $$1, $$2}'

deps: ## install what a fresh Debian machine lacks (libclang for RocksDB, ccache, iproute2); skips what is there
	@if ! ls /usr/lib/llvm-*/lib/libclang.so* >/dev/null 2>&1 && ! ldconfig -p | grep -qE 'libclang(-[0-9.]+)?\.so'; then \
		echo "installing libclang-dev (RocksDB's build needs it)"; \
		SUDO=$$( [ "$$(id -u)" = 0 ] || echo sudo ); \
		$$SUDO apt-get update -qq && $$SUDO apt-get install -y -qq libclang-dev >/dev/null; \
	else echo "libclang: present"; fi
	@if ! command -v ip >/dev/null; then \
		echo "installing iproute2 (the node's network-namespace partition test uses ip netns)"; \
		SUDO=$$( [ "$$(id -u)" = 0 ] || echo sudo ); \
		($$SUDO apt-get update -qq && $$SUDO apt-get install -y -qq iproute2 >/dev/null) || echo "iproute2 unavailable; that test will skip"; \
	fi
	@if ! command -v ccache >/dev/null; then \
		echo "installing ccache (caches RocksDB's C++ objects across rebuilds)"; \
		SUDO=$$( [ "$$(id -u)" = 0 ] || echo sudo ); \
		$$SUDO apt-get install -y -qq ccache >/dev/null || echo "ccache unavailable; building without it"; \
	fi

build: deps ## build everything (debug)
	$(CARGO) build --workspace --all-targets

test: deps ## run every test of the workspace
	@if $(CARGO) nextest --version >/dev/null 2>&1; then \
		$(CARGO) nextest run --workspace --no-fail-fast && $(CARGO) test --workspace --doc; \
	else \
		$(CARGO) test --workspace --no-fail-fast; \
	fi

properties: deps ## the engine's property tests (CHORUS_PROP_RUNS per policy, default 2000, ~11 min on 2 idle cores; also in make test)
	$(CARGO) test --workspace --test properties

lint: deps ## formatting and clippy, as CI checks them
	$(CARGO) fmt --all -- --check
	$(CARGO) clippy --workspace --all-targets -- -D warnings

fmt: ## format the code
	$(CARGO) fmt --all

demo: deps ## the main job: three real chorus nodes, a commit race and a partition that heals
	$(CARGO) build --workspace --bins
	./target/debug/chorus demo

fork-demo: deps ## a real fork, held, switched, pruned and scrubbed on RocksDB (storage level)
	$(CARGO) build --workspace --examples
	./target/debug/examples/fork_on_disk

ci: lint test ## what .ci/run does
