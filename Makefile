# Two entry points for a fresh machine: `make run` and `make test`.
PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed

.PHONY: run test lint typecheck webcheck pytest pytest-postgresql postgresql redis chromium bench bench-fanout bench-nodes soak clean

# $(call debian_package,CHECK,PACKAGE): when the shell command CHECK fails, install Debian's
# PACKAGE if we may (root with apt), else say how.
define debian_package
	@if ! $(1) >/dev/null 2>&1; then \
	  if [ "$$(id -u)" = 0 ] && command -v apt-get >/dev/null; then \
	    apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq $(2); \
	  else \
	    echo "$(2) is missing: sudo apt-get install $(2)"; exit 1; \
	  fi; \
	fi
endef

$(STAMP): pyproject.toml
	$(PYTHON) -m venv $(VENV)
	$(BIN)/pip install --quiet --upgrade pip
	$(BIN)/pip install --quiet -e '.[server,dev]'
	touch $(STAMP)

run: $(STAMP)
	$(BIN)/python -m token_bowl_chat_server

lint: $(STAMP)
	$(BIN)/ruff check src tests bench
	$(BIN)/ruff format --check src tests bench

typecheck: $(STAMP)
	$(BIN)/mypy src

# The web page's JavaScript, type-checked from its JSDoc by TypeScript (from the npm registry;
# Debian's npm is installed here when missing and we may).
webcheck:
	$(call debian_package,command -v npm,npm)
	cd web-check && if [ -f package-lock.json ]; then npm ci --no-audit --no-fund; else npm install --no-audit --no-fund; fi
	cd web-check && npx --no-install tsc -p tsconfig.json

# Tests mostly wait on servers and sockets, so more than one worker keeps the cores busy;
# modules stay whole on one worker (their module-scoped servers start once).
PYTEST_WORKERS ?= 2
PYTEST := $(BIN)/pytest -W error -n $(PYTEST_WORKERS) --dist loadscope

# The fault and scale-out tests start a PostgreSQL cluster (and Redis) of their own; the web
# tests drive Debian's chromium.
pytest: $(STAMP) postgresql redis chromium
	$(PYTEST)

# Again on a throwaway PostgreSQL cluster: the tests that reach a database (tests/conftest.py
# leaves out the ones that would only repeat the SQLite pass), every server they start being
# two processes on one database and a throwaway Redis, clients spread over both (store tests
# run on PostgreSQL alone; tests marked single_node get one process). docs/architecture.md
# says why this pass and not a third one.
pytest-postgresql: $(STAMP) postgresql redis chromium
	$(PYTEST) --database postgresql --topology two-nodes

# Debian's PostgreSQL server binaries; installed here when missing and we may (root + apt).
postgresql:
	$(call debian_package,ls /usr/lib/postgresql/*/bin/postgres,postgresql)

# Debian's redis-server: the tests start throwaway instances on loopback for the server
# processes that share one PostgreSQL (scale-out); installed here when missing and we may.
redis:
	$(call debian_package,command -v redis-server,redis-server)

# Debian's chromium for the web UI tests (playwright drives it; its own browser downloads are
# not used); installed here when missing and we may (root + apt).
chromium:
	$(call debian_package,command -v chromium,chromium)

test: lint typecheck webcheck pytest pytest-postgresql

# Our server against bench/reference.py (issue 10): one JSON line per case on stdout.
BENCH_ROUNDS ?= 3
bench: $(STAMP)
	$(BIN)/python bench/compare.py --rounds $(BENCH_ROUNDS)

bench-fanout: $(STAMP)
	$(BIN)/python bench/fanout.py --sweep 50,200,500

# Fan-out with the receivers split across two nodes on PostgreSQL + Redis, against one node.
bench-nodes: $(STAMP) postgresql redis
	$(BIN)/python bench/fanout_nodes.py --receivers 200 --rounds $(BENCH_ROUNDS)

# Not part of `make test`: mixed load for SOAK_MINUTES, watching the server for leaks.
SOAK_MINUTES ?= 10
soak: $(STAMP)
	$(BIN)/python bench/soak.py --minutes $(SOAK_MINUTES)

clean:
	rm -rf $(VENV) .pytest_cache .mypy_cache .ruff_cache .cache
