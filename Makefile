# Two commands set everything up on a fresh machine: `make run` and `make test`.
PYTHON ?= python3.11
VENV := .venv
BIN := $(VENV)/bin
DB ?= data/shop.duckdb
CUSTOMERS ?= 20000
SEED ?= 42
PORT ?= 8501

.PHONY: run test lint typecheck e2e unit sample bench clean browser

$(BIN)/.installed: requirements.txt
	@command -v $(PYTHON) >/dev/null 2>&1 || { echo "Python 3.11 is required (looked for $(PYTHON))"; exit 1; }
	@test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --upgrade pip
	$(BIN)/python -m pip install --quiet -r requirements.txt
	@touch $@

$(BIN)/.installed-dev: $(BIN)/.installed requirements-dev.txt
	$(BIN)/python -m pip install --quiet -r requirements-dev.txt
	@touch $@

# Debian's chromium drives the browser tests (Playwright cannot download its own here).
browser:
	@command -v chromium >/dev/null 2>&1 || { \
		echo "Installing Debian's chromium for the browser tests..."; \
		(apt-get install -y -q chromium >/dev/null 2>&1 || \
		 (apt-get update -q >/dev/null 2>&1 && apt-get install -y -q chromium >/dev/null 2>&1)) || \
		 { echo "Could not install chromium (run as root, or install it with your package manager)"; exit 1; }; }

$(DB): | $(BIN)/.installed
	$(BIN)/python -m persona_engine generate --db $(DB) --customers $(CUSTOMERS) --seed $(SEED)

sample: $(DB)

run: $(BIN)/.installed $(DB)
	PERSONA_STUDIO_DB=$(DB) $(BIN)/streamlit run app.py --server.port $(PORT)

lint: $(BIN)/.installed-dev
	$(BIN)/ruff check .

typecheck: $(BIN)/.installed-dev
	$(BIN)/mypy persona_engine

test: $(BIN)/.installed-dev browser lint typecheck
	$(BIN)/python -m pytest -q

unit: $(BIN)/.installed-dev
	$(BIN)/python -m pytest -q -m "not browser"

e2e: $(BIN)/.installed-dev browser
	$(BIN)/python -m pytest -q -m browser

bench: $(BIN)/.installed
	$(BIN)/python benchmarks/run_all.py

clean:
	rm -rf $(VENV) .pytest_cache .ruff_cache .mypy_cache
