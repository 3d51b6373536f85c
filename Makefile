# Two entry points: `make run` (set up, start the bridge) and `make test` (set up, run every test).
PYTHON ?= $(shell command -v python3.11 || command -v python3)
VENV   ?= .venv
PY     := $(VENV)/bin/python
BASE   := $(VENV)/.installed-base
FULL   := $(VENV)/.installed-full

.PHONY: run tray test setup system-deps lint test-python test-lua test-uxp clean

run: $(BASE)
	$(VENV)/bin/retouch-bridge serve

tray: $(FULL)
	$(VENV)/bin/retouch-bridge tray

test: $(FULL) lint test-python test-lua test-uxp

setup: $(FULL)

# torch and torchvision first, pinned together: spandrel needs torchvision, and a
# torchvision from another build than torch fails to import.
$(BASE): pyproject.toml
	$(PYTHON) -m venv $(VENV)
	$(PY) -m pip install --quiet torch==2.14.1 torchvision==0.29.1
	$(PY) -m pip install --quiet -e ".[ai,psd]"
	touch $(BASE)

# The tray extra's PyGObject builds against Debian's headers, so system packages come first.
$(FULL): $(BASE)
	scripts/system-deps.sh
	$(PY) -m pip install --quiet -e ".[ai,psd,tray,batch,test]"
	touch $(FULL)

system-deps:
	scripts/system-deps.sh

lint: $(FULL)
	$(VENV)/bin/ruff check .
	cd lightroom-plugin && luacheck --no-color --quiet .

test-python: $(FULL)
	$(PY) -m pytest

test-lua: $(FULL)
	@if [ -x lightroom-plugin/spec/run.sh ]; then RB_PYTHON=$(abspath $(PY)) lightroom-plugin/spec/run.sh; fi

test-uxp: $(FULL)
	@if [ -f uxp-panel/package.json ]; then cd uxp-panel && RB_PYTHON=$(abspath $(PY)) npm test; fi

clean:
	rm -rf $(VENV) .pytest_cache .ruff_cache
