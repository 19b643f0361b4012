"""What the shared options point at, loaded with the CLI's errors: the platform outputs
(`--stack` / `--outputs`) and a stack's settings (`--stack`, `--project-dir`)."""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING

from mlplat.cli.errors import fail

if TYPE_CHECKING:
    from ml.outputs import PlatformOutputs
    from stacks.settings import Settings


def platform_outputs(
    stack: str | None,
    outputs: Path | None,
    *,
    exactly_one: bool = False,
    cwd: Path | None = None,
) -> PlatformOutputs:
    """From `--outputs FILE` when given, else `pulumi stack output` of `--stack`; exit 2 when
    neither (or, with `exactly_one`, both) is given or they cannot be read."""
    from ml.outputs import OutputsError, PlatformOutputs

    if exactly_one and (outputs is None) == (stack is None):
        fail("pass exactly one of --outputs FILE or --stack NAME")
    try:
        return PlatformOutputs.load(stack, outputs, cwd=cwd)
    except OutputsError as exc:
        fail(exc)


def stack_settings(stack: str, project_dir: Path | None) -> tuple[Settings, dict[str, str]]:
    """The stack's settings and the config the program receives (`Pulumi.<stack>.yaml` in
    `project_dir`, default: found upwards); exit 2 with every problem found."""
    from mlplat.plan.preview import find_project_dir, load_stack
    from stacks.settings import SettingsError

    try:
        return load_stack(stack, project_dir or find_project_dir())
    except SettingsError as exc:
        fail(exc)
