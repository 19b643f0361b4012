"""The end-to-end tests share one sandbox (or one realized program) per module: a module-scoped
fixture. The modules that run a whole sandbox (`SANDBOX_MODULES`, most of a minute each) are
collected first, so that they start side by side on the workers and the quicker modules fill in
behind them; `tests/conftest.py` has pytest-xdist hand out whole modules in that order."""

from __future__ import annotations

import pytest

SANDBOX_MODULES = ("test_lifecycle.py", "test_new_model.py")


def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    def first(item: pytest.Item) -> int:
        name = item.path.name
        return SANDBOX_MODULES.index(name) if name in SANDBOX_MODULES else len(SANDBOX_MODULES)

    items.sort(key=first)  # stable: the order within each module is kept
