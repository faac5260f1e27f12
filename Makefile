# The hub's two everyday commands are `make demo` and `make test`; see README.md.
PY ?= python3
VENV := .venv
BIN := $(VENV)/bin
SEED ?= 1

.PHONY: install lock up down status browser demo test unit lint schemas bench profile faults faults-short screenshots

$(BIN)/sendhub: pyproject.toml constraints.txt
	$(PY) -m venv $(VENV)
	$(BIN)/pip install -q --upgrade pip
	$(BIN)/pip install -q -e '.[dev]' -c constraints.txt
	touch $@

# The newest versions pyproject.toml allows, resolved in a venv of their own, into
# constraints.txt (then run `make test` before committing it).
LOCK_VENV := .cache/lock-venv
lock:
	rm -rf $(LOCK_VENV) && $(PY) -m venv $(LOCK_VENV)
	$(LOCK_VENV)/bin/pip install -q --upgrade pip
	$(LOCK_VENV)/bin/pip install -q -e '.[dev]'
	{ head -3 constraints.txt; $(LOCK_VENV)/bin/pip freeze --exclude-editable; } > constraints.txt.new
	mv constraints.txt.new constraints.txt
	rm -rf $(LOCK_VENV)

install: $(BIN)/sendhub

up:
	deploy/local/up

down:
	deploy/local/down

status:
	deploy/local/status

browser:
	deploy/local/browser

.PHONY: prometheus-tools
prometheus-tools:  # promtool, for the tests of deploy/prometheus/
	deploy/local/prometheus-tools

demo: install
	$(BIN)/sendhub demo

test: install up browser prometheus-tools
	$(BIN)/python -m pytest

unit: install
	$(BIN)/python -m pytest tests/unit

lint: install
	$(BIN)/ruff check . && $(BIN)/mypy

schemas: install
	$(BIN)/python -m contracts.schemas

bench: install up  # issue 15's figures first, then the earlier issues' (README: "Benchmarks")
	$(BIN)/python bench/backfill.py
	$(BIN)/python bench/latency.py
	$(BIN)/python bench/replay.py
	$(BIN)/python bench/verify_chains.py
	$(BIN)/python bench/scale_out.py
	$(BIN)/python bench/gateway.py
	$(BIN)/python bench/kafka_security.py
	$(BIN)/python bench/encryption.py

profile: install up  # where the hub's time goes (py-spy; raw profiles in .cache/bench/profiles)
	$(BIN)/python bench/hub_profile.py

# The fault suite (README: "Fault suite"): kills, broker and database restarts, rebalances
# and hostile messages under a steady stream; long for a person, short for CI.
faults: install up
	$(BIN)/python -m faults --seed $(SEED) --profile long

faults-short: install up
	$(BIN)/python -m faults --seed $(SEED) --profile short

# The README's screenshots of the web application: the browser tests' own, copied from
# test-artifacts/ after `make test` (or the tests/e2e/test_web_*.py run).
SCREENSHOTS := sign-in inbox packet packet-amendment oversight oversight-list pupil-history admin-principal
screenshots:
	mkdir -p docs/screenshots
	for name in $(SCREENSHOTS); do cp test-artifacts/web-$$name.png docs/screenshots/$$name.png; done
