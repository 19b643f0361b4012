"""Serving commands: `mlplat serve` (the container contract locally), `deploy`, `rollback`.

`deploy` and `rollback` run `ml.deploy` with the Pulumi CLI's release
(`ml.workflow.pulumi_release`): the version checked (approved, a gate report that says passed, a
readable baseline), `pulumi up` with the version set, the deployment recorded, then its drift
baseline published where the stack's drift job reads it (the model's: `--model NAME`; `deploy`
defaults to the model whose registry group holds the version, `rollback` to the stack's first
model). Errors (a refusal, a failed
`pulumi up`, a baseline not published after the deployment was recorded): message on stderr,
exit 2.
"""

from __future__ import annotations

import json
import sys
from pathlib import Path
from typing import TYPE_CHECKING, Annotated

import typer

from mlplat.cli import options
from mlplat.cli.errors import fail, usage_errors
from mlplat.cli.inputs import model_name, platform_outputs, stack_settings

if TYPE_CHECKING:
    from ml.deploy import Release
    from ml.outputs import PlatformOutputs


def register(app: typer.Typer) -> None:
    app.command("serve")(serve)
    app.command("deploy")(deploy)
    app.command("rollback")(rollback)


def serve(
    model: Annotated[Path, typer.Option("--model", help="A model.tar.gz (or its extracted dir).")],
    port: Annotated[
        int, typer.Option("--port", help="Port to listen on; 0 picks a free one.")
    ] = 8080,
    host: Annotated[str, typer.Option("--host", help="Address to bind.")] = "127.0.0.1",
    max_body_mb: Annotated[
        float, typer.Option("--max-body-mb", help="Largest request body (413 above).")
    ] = 6.0,
) -> None:
    """Serve a model artifact with the SageMaker container contract: GET /ping, POST /invocations.

    Prints `serving <model> on http://HOST:PORT` (the bound port) once the model is loaded.
    """
    import signal

    from ml.serve import ModelServer, ServeError

    if max_body_mb <= 0:
        fail(f"--max-body-mb {max_body_mb}: expected a positive size")
    with usage_errors(ServeError):
        server = ModelServer(
            model, host=host, port=port, max_body_bytes=int(max_body_mb * 1024 * 1024)
        )

    def stop(*_: object) -> None:
        raise KeyboardInterrupt

    try:
        signal.signal(signal.SIGTERM, stop)
        sys.stdout.write(f"serving {model} on {server.url}\n")
        sys.stdout.flush()
        server.serve_forever()
    except KeyboardInterrupt:
        pass
    finally:
        server.close()


def _platform(stack: str, outputs: Path | None, project_dir: Path | None) -> PlatformOutputs:
    """The stack's platform outputs (`--outputs`, else `pulumi stack output`), read before
    anything is applied."""
    platform = platform_outputs(stack, outputs, cwd=project_dir)
    if platform.stack != stack:
        fail(
            f"--outputs {outputs}: the platform outputs of stack {platform.stack!r}, not {stack!r}"
        )
    return platform


def _release_for(
    stack: str, platform: PlatformOutputs, model: str, project_dir: Path | None
) -> Release:
    """The Pulumi CLI's release of `model` for `stack`: `pulumi up` in `project_dir`; the baseline
    and the artifact published where the model's settings say (beside its `modelKey`, and at it),
    in the stack's models bucket, where its drift job reads them."""
    from ml.contracts import baseline_key_for
    from ml.workflow import pulumi_release

    settings, _ = stack_settings(stack, project_dir)
    try:
        endpoint = settings.model(model).endpoint
    except KeyError as exc:
        fail(str(exc.args[0]))
    return pulumi_release(
        platform,
        baseline_key_for(endpoint.model_key),
        model=model,
        cwd=project_dir,
        model_key=endpoint.model_key,
    )


def _model_of_version(platform: PlatformOutputs, package_arn: str) -> str | None:
    """The stack's model whose registry group holds the version `package_arn`, if any."""
    from ml.deploy import DeployError, group_of

    try:
        group = group_of(package_arn)
    except DeployError:
        return None
    found = [n for n, m in platform.models.items() if m.model_package_group_name == group]
    return found[0] if len(found) == 1 else None


def _print(result: object) -> None:
    from dataclasses import asdict, is_dataclass

    if is_dataclass(result) and not isinstance(result, type):
        sys.stdout.write(json.dumps(asdict(result), indent=2) + "\n")


def deploy(
    stack: options.StackName,
    model_package: Annotated[
        str, typer.Option("--model-package", help="ARN of an approved model package version.")
    ],
    model: options.Model = None,
    outputs: options.Outputs = None,
    project_dir: options.ProjectDir = None,
) -> None:
    """Promote an approved model version: set the stack's model and `pulumi up` it.

    Refuses, before anything is applied, a version that is not approved, whose gate report does
    not say passed or that has no readable drift baseline. Records deployed-to/-by/-at in its
    metadata, then publishes its baseline where the stack's drift job reads it.
    """
    from ml.deploy import DeployError
    from ml.deploy import deploy as run_deploy

    platform = _platform(stack, outputs, project_dir)
    name = model_name(model or _model_of_version(platform, model_package), platform)
    release = _release_for(stack, platform, name, project_dir)
    with usage_errors(DeployError):
        result = run_deploy(stack, model_package, release)
    _print(result)


def rollback(
    stack: options.StackName,
    group: options.Group = None,
    model: options.Model = None,
    outputs: options.Outputs = None,
    project_dir: options.ProjectDir = None,
) -> None:
    """Return the stack to the approved model version deployed before the current one."""
    from ml.deploy import DeployError
    from ml.deploy import rollback as run_rollback

    platform = _platform(stack, outputs, project_dir)
    name = model_name(model, platform)
    release = _release_for(stack, platform, name, project_dir)
    group = group or platform.model(name).model_package_group_name
    with usage_errors(DeployError):
        result = run_rollback(stack, group, release)
    _print(result)
