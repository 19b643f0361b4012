"""The end-to-end tests share one sandbox (or one realized program) per module: a module-scoped
fixture. Under pytest-xdist's default `--dist load` the tests of one module would be dealt out to
every worker, and each worker would build the module's sandbox again (a minute of work, twice);
so when this directory is run with `-n` and no other distribution, each module goes to one worker
whole (`--dist loadfile`, which `make unit` uses too), and the modules that run a whole sandbox
(`SANDBOX_MODULES`) are collected first, so that they start side by side on the workers and the
quicker modules fill in behind them."""

from __future__ import annotations

from typing import Any

import pytest

SANDBOX_MODULES = ("test_lifecycle.py", "test_new_model.py")


def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    def first(item: pytest.Item) -> int:
        name = item.path.name
        return SANDBOX_MODULES.index(name) if name in SANDBOX_MODULES else len(SANDBOX_MODULES)

    items.sort(key=first)  # stable: the order within each module is kept


def pytest_xdist_make_scheduler(config: pytest.Config, log: Any) -> Any:
    if config.getoption("dist", None) != "load":
        return None
    from xdist.scheduler import LoadFileScheduling

    config.option.loadscopereorder = False  # the collection's order: the sandboxes first
    return LoadFileScheduling(config, log)
