# Two commands work on a fresh machine with only Python >= 3.11:
#   make demo   sets up and runs the main job: the whole platform and ML lifecycle in the sandbox
#   make test   sets up and runs the whole check (ruff, mypy, pytest)
SHELL := /bin/bash
export PATH := $(HOME)/.local/bin:$(PATH)
STACK ?= dev

.PHONY: uv sync demo preview test lint typecheck unit bench docs

uv:
	@command -v uv >/dev/null 2>&1 || python3 -m pip install --quiet --user uv \
	  || python3 -m pip install --quiet uv

# --compile-bytecode: the dependencies' bytecode is written once at install, so no run compiles
# pulumi-aws from source again (it would on every run where PYTHONDONTWRITEBYTECODE is set).
sync: uv
	uv sync --frozen --compile-bytecode

demo: sync
	uv run mlplat sandbox --json sandbox-report.json

preview: sync
	uv run mlplat preview --stack $(STACK) --json plan-$(STACK).json

lint: sync
	uv run ruff check .
	uv run ruff format --check .

typecheck: sync
	uv run mypy

unit: sync
	uv run pytest -q -n auto --dist loadfile

# The whole check: lint first (seconds), then mypy in the background while pytest runs (on two
# cores the type-check fills the tests' idle time instead of waiting for them); mypy's output is
# printed after the tests', and either failing fails the check.
test: sync
	uv run ruff check .
	uv run ruff format --check .
	@log=$$(mktemp); uv run mypy >"$$log" 2>&1 & types=$$!; \
	uv run pytest -q -n auto --dist loadfile; tests=$$?; \
	wait $$types; typed=$$?; echo "mypy:"; cat "$$log"; rm -f "$$log"; \
	exit $$(( tests != 0 || typed != 0 ))

bench: sync
	uv run mlplat bench --json bench.json

# Regenerate the Pulumi.yaml config schema and the README settings table from stacks/settings/spec.py.
docs: sync
	uv run python -m mlplat.plan.project_schema --write .
