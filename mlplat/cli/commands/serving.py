"""Serving commands: `mlplat serve` (the container contract locally), `deploy`, `rollback`."""

from __future__ import annotations

import json
import sys
from collections.abc import Callable
from pathlib import Path
from typing import Annotated

import typer


def register(app: typer.Typer) -> None:
    app.command("serve")(serve)
    app.command("deploy")(deploy)
    app.command("rollback")(rollback)


def _fail(message: str, code: int = 2) -> typer.Exit:
    sys.stderr.write(message.rstrip() + "\n")
    return typer.Exit(code)


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
        raise _fail(f"error: --max-body-mb {max_body_mb}: expected a positive size")
    try:
        server = ModelServer(
            model, host=host, port=port, max_body_bytes=int(max_body_mb * 1024 * 1024)
        )
    except ServeError as exc:
        raise _fail(f"error: {exc}") from None

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


def _apply_for(project_dir: Path | None) -> Callable[[str, str], None]:
    """The Pulumi CLI apply step: set the stack's model, `pulumi up`, publish its baseline."""
    from ml.contracts import baseline_key_for
    from ml.deploy import publish_baseline, pulumi_apply
    from ml.outputs import OutputsError, PlatformOutputs
    from mlplat.plan.preview import find_project_dir, load_stack

    def apply(stack: str, model_package_arn: str) -> None:
        pulumi_apply(stack, model_package_arn, cwd=project_dir)
        settings, _ = load_stack(stack, project_dir or find_project_dir())
        try:
            platform = PlatformOutputs.from_pulumi(stack, cwd=project_dir)
        except OutputsError as exc:
            from ml.deploy import DeployError

            raise DeployError(str(exc)) from exc
        publish_baseline(
            model_package_arn,
            platform.models_bucket,
            baseline_key_for(settings.endpoint.model_key),
            platform.lake_kms_key_arn,
        )

    return apply


def _print(result: object) -> None:
    from dataclasses import asdict, is_dataclass

    if is_dataclass(result) and not isinstance(result, type):
        sys.stdout.write(json.dumps(asdict(result), indent=2) + "\n")


def deploy(
    stack: Annotated[str, typer.Option("--stack", "-s", help="Stack to deploy to.")],
    model_package: Annotated[
        str, typer.Option("--model-package", help="ARN of an approved model package version.")
    ],
    project_dir: Annotated[
        Path | None, typer.Option("--project-dir", help="Directory holding Pulumi.yaml.")
    ] = None,
) -> None:
    """Promote an approved model version: set the stack's model and `pulumi up` it.

    Refuses a version that is not approved. Records deployed-to/-by/-at in its metadata.
    """
    from ml.deploy import DeployError
    from ml.deploy import deploy as run_deploy

    try:
        result = run_deploy(stack, model_package, _apply_for(project_dir))
    except DeployError as exc:
        raise _fail(f"error: {exc}") from None
    _print(result)


def rollback(
    stack: Annotated[str, typer.Option("--stack", "-s", help="Stack to roll back.")],
    group: Annotated[
        str | None,
        typer.Option(
            "--group",
            help="Model package group (default: the stack's `model_package_group_name` output).",
        ),
    ] = None,
    outputs: Annotated[
        Path | None,
        typer.Option("--outputs", help="Platform outputs JSON (`pulumi stack output --json`)."),
    ] = None,
    project_dir: Annotated[
        Path | None, typer.Option("--project-dir", help="Directory holding Pulumi.yaml.")
    ] = None,
) -> None:
    """Return the stack to the approved model version deployed before the current one."""
    from ml.deploy import DeployError
    from ml.deploy import rollback as run_rollback

    try:
        group_name = group or _group_from_outputs(stack, outputs, project_dir)
        result = run_rollback(stack, group_name, _apply_for(project_dir))
    except DeployError as exc:
        raise _fail(f"error: {exc}") from None
    _print(result)


def _group_from_outputs(stack: str, outputs: Path | None, project_dir: Path | None) -> str:
    from ml.deploy import DeployError
    from ml.outputs import OutputsError, PlatformOutputs

    try:
        platform = PlatformOutputs.load(stack, outputs, cwd=project_dir)
    except OutputsError as exc:
        raise DeployError(str(exc)) from exc
    return platform.model_package_group_name
