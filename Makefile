# platformgen developer commands. `make test` and `make demo` work on a fresh clone.
PYTHON ?= python3
VENV ?= .venv
PY := $(VENV)/bin/python
CONSTRAINTS := constraints/constraints-py3.11.txt
STAMP := $(VENV)/.installed

.PHONY: install lint typecheck test demo golden constraints clean

$(STAMP): pyproject.toml $(CONSTRAINTS)
	$(PYTHON) -m venv $(VENV)
	$(PY) -m pip install --quiet --disable-pip-version-check -c $(CONSTRAINTS) -e '.[test]'
	touch $(STAMP)

install: $(STAMP)

lint: $(STAMP)
	$(VENV)/bin/ruff check src tests benchmarks
	$(VENV)/bin/ruff format --check src tests benchmarks

typecheck: $(STAMP)
	$(VENV)/bin/mypy

test: lint typecheck
	$(VENV)/bin/pytest -n 2 -q

demo: $(STAMP)
	$(VENV)/bin/platformgen validate specs
	$(VENV)/bin/platformgen compile specs -o generated
	$(VENV)/bin/platformgen compile specs -o generated --check

# Rewrite the golden files of tests/golden after an intended change; review the diff before committing.
golden: $(STAMP)
	$(VENV)/bin/pytest -q tests/test_golden.py --update-golden

# Re-resolve the pinned test environment (run after changing dependencies; commit the result).
constraints:
	rm -rf .venv-constraints
	$(PYTHON) -m venv .venv-constraints
	.venv-constraints/bin/pip install --quiet --disable-pip-version-check -e '.[test]'
	.venv-constraints/bin/pip freeze --exclude-editable | grep -v '^platformgen' > $(CONSTRAINTS)
	rm -rf .venv-constraints

clean:
	rm -rf $(VENV) .pytest_cache .mypy_cache .ruff_cache
