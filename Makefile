# make run   — set up .venv and start lmtpd on the embedded defaults under ./var
# make test  — set up .venv and run every test
PY ?= python3
VENV := .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed

.PHONY: run test lint bench bench-compare clean

$(STAMP): pyproject.toml
	test -x $(BIN)/python || $(PY) -m venv $(VENV)
	$(BIN)/pip install -q --upgrade pip
	$(BIN)/pip install -q -e '.[test]'
	touch $(STAMP)

run: $(STAMP)
	@$(BIN)/lmtpd mailbox show demo@localhost >/dev/null 2>&1 || \
		echo demo | $(BIN)/lmtpd mailbox add demo@localhost --password-stdin
	$(BIN)/lmtpd serve

test: $(STAMP)
	$(BIN)/ruff check .
	$(BIN)/python -m pytest

bench: $(STAMP)
	$(BIN)/python bench/lmtp_bench.py

bench-compare: $(STAMP)
	$(BIN)/python bench/lmtp_bench.py --compare
	$(BIN)/python bench/pop3_compare.py
	$(BIN)/python bench/pop3_compare.py --login-cache 0 --large 0

lint: $(STAMP)
	$(BIN)/ruff check .

clean:
	rm -rf $(VENV) var .pytest_cache
