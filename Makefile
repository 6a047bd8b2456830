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

.PHONY: help deps build test properties lint fmt demo fork-demo fuzz-deps fuzz-build fuzz-smoke fuzz ci

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
	$(CARGO) fmt --manifest-path fuzz/Cargo.toml -- --check
	$(CARGO) clippy --workspace --all-targets -- -D warnings

fmt: ## format the code
	$(CARGO) fmt --all

demo: deps ## the main job: three real chorus nodes, a commit race and a partition that heals
	$(CARGO) build --workspace --bins
	./target/debug/chorus demo

fork-demo: deps ## a real fork, held, switched, pruned and scrubbed on RocksDB (storage level)
	$(CARGO) build --workspace --examples
	./target/debug/examples/fork_on_disk

# Fuzzing (fuzz/, cargo-fuzz and libFuzzer; see the README's "Fuzzing" section). Stable Rust
# builds the targets without a sanitizer; with one (FUZZ_FLAGS=--sanitizer address) cargo-fuzz
# passes -Z flags, which RUSTC_BOOTSTRAP=1 lets the stable compiler take, so no nightly
# toolchain is needed either way. Each run first writes seeds made from real encodings into the
# target's corpus directory (fuzz/corpus/<target>, kept between runs, not in git); crashes
# land in fuzz/artifacts/<target>, each run's output in fuzz/logs/<target>.log.
FUZZ_TARGETS := envelope application_payload engine_ingest sync_messages invite_code config_file
FUZZ_SMOKE_TIME ?= 10
FUZZ_TIME ?= 300
FUZZ_CARGO := RUSTC_BOOTSTRAP=1 $(CARGO) fuzz
# No AddressSanitizer: the code under test is safe Rust (panics, aborts, hangs and runaway
# allocation are what libFuzzer catches here), and ASan would halve the executions per second.
FUZZ_FLAGS ?= --sanitizer none

fuzz-deps: ## install cargo-fuzz if it is missing
	@if ! $(CARGO) fuzz --version >/dev/null 2>&1; then \
		echo "installing cargo-fuzz"; $(CARGO) install cargo-fuzz --locked; \
	else echo "cargo-fuzz: present"; fi

fuzz-build: fuzz-deps ## build the fuzz targets (fuzz/target, its own workspace)
	$(FUZZ_CARGO) build $(FUZZ_FLAGS)

fuzz-smoke: fuzz-build ## run every fuzz target for FUZZ_SMOKE_TIME s (default 10; CI)
	@$(MAKE) --no-print-directory fuzz-run FUZZ_RUN_TIME=$(FUZZ_SMOKE_TIME)

fuzz: fuzz-build ## run every fuzz target for FUZZ_TIME s each (default 300), or FUZZ_TARGETS=name
	@$(MAKE) --no-print-directory fuzz-run FUZZ_RUN_TIME=$(FUZZ_TIME)

fuzz-run:
	@mkdir -p fuzz/logs; for target in $(FUZZ_TARGETS); do \
		echo "== fuzz $$target for $(FUZZ_RUN_TIME) s (log: fuzz/logs/$$target.log)"; \
		if CHORUS_FUZZ_SEEDS=fuzz/corpus/$$target $(FUZZ_CARGO) run $(FUZZ_FLAGS) $$target \
			fuzz/corpus/$$target -- -max_total_time=$(FUZZ_RUN_TIME) -timeout=30 -print_final_stats=1 \
			>fuzz/logs/$$target.log 2>&1; then \
			grep -E '^(seeds:|#[0-9]+\s+DONE|stat::number_of_executed_units|stat::average_exec_per_sec|stat::peak_rss_mb)' fuzz/logs/$$target.log; \
		else \
			tail -n 60 fuzz/logs/$$target.log; echo "fuzz $$target: FAILED (input in fuzz/artifacts/$$target)"; exit 1; \
		fi; \
	done

ci: lint test fuzz-smoke ## what .ci/run does
