# Set-up and the two README commands. A fresh clone needs nothing else:
#   make demo   sets up .venv and explains the bundled BERT, GPT and CNN models (reports in explain-demo/)
#   make test   sets up .venv (and Chromium for the browser tests) and runs the test suite
VENV   ?= .venv
PY     := $(VENV)/bin/python
STAMP  := $(VENV)/.installed
# CPU machines take the CPU build of torch that pip finds on this disk; with an NVIDIA driver
# present a plain `torch` gives the CUDA build. Override with `make TORCH=...`.
TORCH  ?= $(if $(shell command -v nvidia-smi 2>/dev/null),torch,torch==2.13.0)
PIP    := $(PY) -m pip install --quiet --disable-pip-version-check

.PHONY: setup demo test test-fast browser bench typecheck clean

setup: $(STAMP)

$(STAMP): pyproject.toml
	test -x $(PY) || python3 -m venv $(VENV)
	$(PIP) "$(TORCH)"
	$(PIP) -e ".[test,distributed]"
	touch $(STAMP)

demo: $(STAMP)
	$(VENV)/bin/explain demo --out explain-demo

# Chromium for the report tests: Debian's package (Playwright drives it; it downloads no browser).
browser:
	@command -v chromium >/dev/null 2>&1 || { \
	  if [ "$$(id -u)" = 0 ]; then (apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq chromium >/dev/null) || echo "warning: could not install chromium; browser tests will be skipped"; \
	  else echo "note: chromium is not installed (sudo apt-get install chromium); browser tests will be skipped"; fi; }

test: $(STAMP) browser
	$(PY) -m mypy
	$(PY) -m pytest -q -p no:cacheprovider --durations=15

test-fast: $(STAMP)
	$(PY) -m pytest -q -p no:cacheprovider -m "not slow and not browser"

typecheck: $(STAMP)
	$(PY) -m mypy

bench: $(STAMP)
	$(PY) benchmarks/speed.py

clean:
	rm -rf $(VENV) explain-demo explain-out build *.egg-info
