"""ML commands (train, evaluate, register, approve)."""

from __future__ import annotations

import typer


def register(app: typer.Typer) -> None:
    del app
