# Two entry points: `make run` (set up, start the bridge) and `make test` (set up, run every test).
PYTHON ?= $(shell command -v python3.11 || command -v python3)
VENV   ?= .venv
PY     := $(VENV)/bin/python
STAMP  := $(VENV)/.installed

.PHONY: run test setup system-deps lint test-python test-lua test-uxp clean

run: $(STAMP)
	$(VENV)/bin/retouch-bridge serve

# system-deps first: the venv's PyGObject (tray extra) builds against Debian's headers.
test: system-deps $(STAMP) lint test-python test-lua test-uxp

setup: $(STAMP)

# torch and torchvision first, pinned together: spandrel needs torchvision, and a
# torchvision from another build than torch fails to import.
$(STAMP): pyproject.toml
	$(PYTHON) -m venv $(VENV)
	$(PY) -m pip install --quiet torch==2.14.1 torchvision==0.29.1
	$(PY) -m pip install --quiet -e ".[ai,psd,tray,test]"
	touch $(STAMP)

system-deps:
	scripts/system-deps.sh

lint: $(STAMP)
	$(VENV)/bin/ruff check .

test-python: $(STAMP)
	$(PY) -m pytest

test-lua: $(STAMP)
	@if [ -x lightroom-plugin/spec/run.sh ]; then RB_PYTHON=$(abspath $(PY)) lightroom-plugin/spec/run.sh; fi

test-uxp: $(STAMP)
	@if [ -f uxp-panel/package.json ]; then cd uxp-panel && RB_PYTHON=$(abspath $(PY)) npm test; fi

clean:
	rm -rf $(VENV) .pytest_cache .ruff_cache
