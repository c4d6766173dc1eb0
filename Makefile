# platformgen developer commands. `make test` and `make demo` work on a fresh clone.
PYTHON ?= python3
VENV ?= .venv
PY := $(VENV)/bin/python
CONSTRAINTS := constraints/constraints-py3.11.txt
STAMP := $(VENV)/.installed

.PHONY: install tool-venvs lint typecheck test demo golden constraints clean

$(STAMP): pyproject.toml $(CONSTRAINTS)
	$(PYTHON) -m venv $(VENV)
	$(PY) -m pip install --quiet --disable-pip-version-check -c $(CONSTRAINTS) -e '.[test]'
	# check-jsonschema (the compose-spec schema) declares ruamel.yaml>=0.18, which GX 0.18 forbids; it runs on 0.17
	$(PY) -m pip install --quiet --disable-pip-version-check --no-deps check-jsonschema==0.39.0 regress==2026.9.1
	touch $(STAMP)

install: $(STAMP)

# Superset and OpenMetadata in their own virtualenvs: the tests check generated bundles and workflows with them.
tool-venvs:
	bash scripts/setup_tool_venvs.sh

lint: $(STAMP)
	$(VENV)/bin/ruff check src tests benchmarks
	$(VENV)/bin/ruff format --check src tests benchmarks

typecheck: $(STAMP)
	$(VENV)/bin/mypy

test: lint typecheck tool-venvs
	$(VENV)/bin/pytest -n 2 -q

demo: $(STAMP)
	$(VENV)/bin/platformgen validate specs
	$(VENV)/bin/platformgen up --local specs

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
	rm -rf $(VENV) .venv-superset .venv-openmetadata .pytest_cache .mypy_cache .ruff_cache
