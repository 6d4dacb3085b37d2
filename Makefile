# Set-up and the two README commands. A fresh clone needs nothing else:
#   make demo   sets up .venv and explains the bundled BERT, GPT and CNN models (reports in explain-demo/)
#   make test   sets up .venv (and Chromium for the browser tests), checks the wheel, the sdist and the
#               docs site, and runs the test suite
#   make docs   builds the documentation site into site/ (open site/index.html)
VENV   ?= .venv
PY     := $(VENV)/bin/python
STAMP  := $(VENV)/.installed
# CPU machines take the CPU build of torch that pip finds on this disk; with an NVIDIA driver
# present a plain `torch` gives the CUDA build. Override with `make TORCH=...`.
TORCH  ?= $(if $(shell command -v nvidia-smi 2>/dev/null),torch,torch==2.13.0)
PIP    := $(PY) -m pip install --quiet --disable-pip-version-check
# Exact versions of everything but torch, as the tests last passed with them (make lock refreshes it).
LOCK   := requirements.lock

.PHONY: setup lock test-latest demo test test-fast browser wheel-check dist-check docs bench typecheck clean

setup: $(STAMP)

# torch first (the CPU build on CPU machines), then the locked versions, then the project itself
# without resolving again, so a fresh clone gets the tested environment whatever was released since.
$(STAMP): pyproject.toml $(LOCK)
	test -x $(PY) || python3 -m venv $(VENV)
	$(PIP) "$(TORCH)"
	$(PIP) -r $(LOCK)
	$(PIP) --no-deps -e .
	$(PY) -m pip check
	touch $(STAMP)

# Re-resolve the lock after a change to pyproject's dependencies, keeping every pin that still
# fits; `make lock UPGRADE=1` moves every pin to the newest release the ranges allow (run
# `make test-latest` first: it tries those same releases). Resolved against the CPU torch wheel
# (so no CUDA packages enter the lock), torch itself left out (the TORCH line above installs it).
UV := build/uv/bin/uv
UPGRADE ?=
lock:
	test -x $(UV) || { python3 -m venv build/uv && build/uv/bin/pip install --quiet uv==0.13.9; }
	$(UV) pip compile pyproject.toml --extra test --extra distributed --extra docs --extra release --python-version 3.11 \
	  --python-platform x86_64-manylinux_2_28 --find-links /opt/wheels --override .ci/torch-cpu.txt \
	  --no-emit-package torch $(if $(UPGRADE),--upgrade) --custom-compile-command "make lock" -o $(LOCK)

# The newest releases pyproject allows, in a venv of their own: how drift upstream (a new
# transformers that changes its type hints, say) shows here before it reaches users.
LATEST := .venv-latest
test-latest: browser
	rm -rf $(LATEST) && python3 -m venv $(LATEST)
	$(LATEST)/bin/python -m pip install --quiet --disable-pip-version-check "$(TORCH)"
	$(LATEST)/bin/python -m pip install --quiet --disable-pip-version-check --upgrade -e ".[test,distributed,docs,release]"
	$(LATEST)/bin/python -m pip list --format=freeze > $(LATEST)/versions.txt
	$(LATEST)/bin/python -m mypy
	EXPLAIN_NO_SKIP=1 $(LATEST)/bin/python -m pytest -q -p no:cacheprovider

demo: $(STAMP)
	$(VENV)/bin/explain demo --out explain-demo

# Chromium for the report tests: Debian's package (Playwright drives it; it downloads no browser).
# The browser tests need it: without it `make test` stops here rather than skip them. Node too:
# tests/test_report_assets.py syntax-checks the report's JavaScript files with `node --check`.
browser:
	@command -v chromium >/dev/null 2>&1 || { \
	  if [ "$$(id -u)" = 0 ]; then apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq chromium >/dev/null; \
	  else echo "error: chromium is not installed and this is not root: sudo apt-get install chromium" >&2; exit 1; fi; }
	@command -v chromium >/dev/null 2>&1 || { echo "error: chromium could not be installed" >&2; exit 1; }
	@command -v node >/dev/null 2>&1 || { \
	  if [ "$$(id -u)" = 0 ]; then apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq nodejs >/dev/null; \
	  else echo "error: node is not installed and this is not root: sudo apt-get install nodejs" >&2; exit 1; fi; }
	@command -v node >/dev/null 2>&1 || { echo "error: node could not be installed" >&2; exit 1; }

# A wheel built from this tree installs into a fresh venv (the dependencies are lent from .venv)
# with no top-level `cli` or `reports` package, and `explain --help` and `explain demo` run from it.
WHEEL_DIR := build/wheel-check
SITE = $(shell $(PY) -c 'import sysconfig; print(sysconfig.get_paths()["purelib"])')
# The distribution is explain-models on the package index (`explain` there is someone else's);
# the import name stays `explain`. Wheel files spell the name with an underscore.
WHEEL  := explain_models-*.whl
wheel-check: $(STAMP)
	rm -rf $(WHEEL_DIR) && mkdir -p $(WHEEL_DIR)
	$(PY) -m pip wheel --quiet --no-deps --no-build-isolation -w $(WHEEL_DIR) .
	python3 -m venv $(WHEEL_DIR)/venv
	$(WHEEL_DIR)/venv/bin/python -m pip install --quiet --no-deps --no-index $(WHEEL_DIR)/$(WHEEL)
	cd $(WHEEL_DIR) && PYTHONPATH=$(SITE) venv/bin/python ../../.ci/wheel_check.py $(WHEEL)

# What a release uploads: `python -m build` writes the sdist, then builds the wheel from that
# sdist (so a file the sdist leaves out fails here, not on a user's machine), and twine checks
# both as the package index would (metadata, README rendering). Built without isolation from the
# locked setuptools, so it needs no download.
DIST_DIR := build/dist
dist-check: $(STAMP)
	rm -rf $(DIST_DIR)
	mkdir -p build && $(PY) -m build --no-isolation --outdir $(DIST_DIR) . >build/dist.log 2>&1 || { cat build/dist.log; exit 1; }
	$(PY) -m twine check --strict $(DIST_DIR)/*
	$(PY) .ci/dist_check.py $(DIST_DIR)

# The documentation site (docs/*.md, nav in mkdocs.yml) into site/. --strict: a link to a page or
# an anchor that does not exist, a docstring the API reference cannot read, or a generated table
# whose JSON is missing fails the build. Not --quiet: mkdocs then drops the warnings that --strict
# counts, and a broken anchor passes. NO_MKDOCS_2_WARNING: material's notice about MkDocs 2.
docs: $(STAMP)
	NO_MKDOCS_2_WARNING=1 $(VENV)/bin/mkdocs build --strict

test: $(STAMP) browser wheel-check dist-check docs
	$(PY) -m mypy
	EXPLAIN_NO_SKIP=1 $(PY) -m pytest -q -p no:cacheprovider --durations=15

test-fast: $(STAMP)
	$(PY) -m pytest -q -p no:cacheprovider -m "not slow and not browser"

typecheck: $(STAMP)
	$(PY) -m mypy

bench: $(STAMP)
	$(PY) benchmarks/speed.py

clean:
	rm -rf $(VENV) $(LATEST) explain-demo explain-out build site *.egg-info
