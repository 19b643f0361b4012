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
    """The Pulumi CLI apply step: `pulumi config set` the model, then `pulumi up`."""
    from ml.deploy import pulumi_apply

    def apply(stack: str, model_package_arn: str) -> None:
        pulumi_apply(stack, model_package_arn, cwd=project_dir)

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


GROUP_OUTPUT = "model_package_group_name"


def _group_from_outputs(stack: str, outputs: Path | None, project_dir: Path | None) -> str:
    import subprocess

    from ml.deploy import DeployError

    if outputs is not None:
        try:
            data = json.loads(outputs.read_text())
        except (OSError, json.JSONDecodeError) as exc:
            raise DeployError(f"cannot read platform outputs from {outputs}: {exc}") from exc
    else:
        try:
            done = subprocess.run(
                ["pulumi", "stack", "output", "--json", "-s", stack],
                cwd=project_dir,
                capture_output=True,
                text=True,
                check=True,
                timeout=120,
            )
        except FileNotFoundError as exc:
            raise DeployError(
                "the Pulumi CLI is not installed: pass --group or --outputs FILE"
            ) from exc
        except subprocess.CalledProcessError as exc:
            raise DeployError(
                f"pulumi stack output -s {stack} failed: {exc.stderr.strip()}"
            ) from exc
        data = json.loads(done.stdout)
    value = data.get(GROUP_OUTPUT) if isinstance(data, dict) else None
    if not isinstance(value, str) or not value:
        raise DeployError(f"the platform outputs have no {GROUP_OUTPUT}: pass --group")
    return value
