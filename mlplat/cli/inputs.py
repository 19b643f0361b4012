"""What the shared options point at, loaded with the CLI's errors: the platform outputs
(`--stack` / `--outputs`), a stack's settings (`--stack`, `--project-dir`) and the model
(`--model`)."""

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


def model_name(model: str | None, platform: PlatformOutputs | None = None) -> str:
    """`--model` when given (a package of `ml/models/`, hosted by the stack of `platform` when
    there is one), else the stack's first model, else the first package; exit 2 otherwise."""
    from ml.models import names

    known = names()
    if model is None:
        if platform is not None and platform.models:
            return next(iter(platform.models))
        if not known:
            fail("no models: ml/models/ holds no model package")
        return known[0]
    if model not in known:
        fail(f"--model {model!r}: no such model; the models: {', '.join(known) or 'none'}")
    if platform is not None and model not in platform.models:
        fail(
            f"--model {model!r}: stack {platform.stack!r} hosts no such model; its models: "
            f"{', '.join(sorted(platform.models)) or 'none'}"
        )
    return model


def stack_settings(stack: str, project_dir: Path | None) -> tuple[Settings, dict[str, str]]:
    """The stack's settings and the config the program receives (`Pulumi.<stack>.yaml` in
    `project_dir`, default: found upwards); exit 2 with every problem found."""
    from mlplat.plan.preview import find_project_dir, load_stack
    from stacks.settings import SettingsError

    try:
        return load_stack(stack, project_dir or find_project_dir())
    except SettingsError as exc:
        fail(exc)
