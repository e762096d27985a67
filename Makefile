# Every target installs what it needs into .venv (created if missing).
PYTHON ?= python3
VENV := .venv
PY := $(VENV)/bin/python
PIP := $(PY) -m pip
STAMP := $(VENV)/.installed

.PHONY: demo test test-all bench lint docs stress clean

$(PY):
	$(PYTHON) -m venv $(VENV)
	$(PIP) install --quiet --upgrade pip

$(STAMP): $(PY) setup.cfg pyproject.toml
	$(PIP) install --quiet -e ".[test,dask]"
	touch $(STAMP)

demo: $(STAMP)
	$(VENV)/bin/pyscatter demo out/

test: $(STAMP)
	$(PY) -m pytest -q --nbmake --nbmake-timeout=600 tests notebooks
	PYSCATTER_CACHE=off $(PY) -m pytest -q --doctest-modules pyscatter  # the docstrings; no matrix cache in ~
	$(VENV)/bin/mypy  # the whole package (pyproject.toml [tool.mypy])

bench: $(STAMP)
	$(PY) benchmarks/run.py

stress: $(STAMP)
	$(PY) tests/stress/kill_resume.py --kills 200 && $(PY) tests/stress/write_faults.py --faults 50

lint: $(STAMP)
	$(VENV)/bin/ruff check pyscatter tests benchmarks
	$(VENV)/bin/ruff format --check pyscatter tests benchmarks
	$(VENV)/bin/mypy

docs: $(STAMP)
	$(PIP) install --quiet -e ".[docs]"
	$(VENV)/bin/sphinx-build -W -b html docs docs/_build/html

clean:
	rm -rf $(VENV) out docs/_build .pytest_cache
