"""`mlplat sandbox`: the platform on an embedded moto server, and the lifecycle run against it."""

from __future__ import annotations

import contextlib
import json
import shutil
import tempfile
import threading
from collections.abc import Callable
from pathlib import Path
from typing import TYPE_CHECKING, Annotated

import typer

from mlplat.cli import options
from mlplat.cli.errors import ExitCode, fail, usage_errors
from mlplat.cli.inputs import stack_settings

if TYPE_CHECKING:
    from rich.console import Console

    from mlplat.sandbox.lifecycle import SandboxReport

STACK = "local"


def register(app: typer.Typer) -> None:
    app.command("sandbox")(sandbox)


def _wait_until_interrupted() -> None:
    with contextlib.suppress(KeyboardInterrupt):
        threading.Event().wait()


# Tests replace this (the real one blocks until Ctrl-C).
wait_until_interrupted: Callable[[], None] = _wait_until_interrupted


def sandbox(
    json_path: Annotated[
        Path | None, options.json_file("the report (steps, resources, the lifecycle's figures)")
    ] = None,
    keep: Annotated[
        bool,
        typer.Option("--keep", help="Leave the server running (until Ctrl-C) to explore it."),
    ] = False,
    project_dir: options.ProjectDir = None,
    models: options.Models = None,
) -> None:
    """Stand up the `local` stack on an embedded moto server (127.0.0.1, a free port) and run the
    lifecycle against it, for every model of the stack side by side: no AWS account, Pulumi CLI or
    network. With --models, the platform is still realized whole, and the steps each model takes
    run for the named models only.

    Exit codes: 0 every step passed, 1 a step failed, 2 bad configuration or usage.
    """
    from rich.console import Console

    from mlplat.sandbox.lifecycle import SandboxContext, SandboxReport, run_steps
    from mlplat.sandbox.server import SandboxError

    settings, config = stack_settings(STACK, project_dir)
    if json_path is not None and not json_path.parent.exists():
        fail(f"--json {json_path}: directory {json_path.parent} does not exist")
    only = _selected(models, tuple(m.name for m in settings.models))

    console = Console(stderr=True)
    scratch = Path(tempfile.mkdtemp(prefix="mlplat-sandbox-"))
    ctx = SandboxContext(
        settings=settings,
        config=config,
        scratch=scratch,
        report=SandboxReport(stack=STACK),
        only=only,
    )
    try:
        with usage_errors(SandboxError):
            report = run_steps(ctx, console=console)
        _print_summary(Console(), report)
        if json_path is not None:
            json_path.write_text(json.dumps(report.to_json(), indent=2, sort_keys=True) + "\n")
            console.print(f"report written to {json_path}")
        if keep and ctx.server is not None and ctx.server.running:
            serving = {
                name: str(m.lifecycle["deploy"]["url"])
                for name, m in report.models.items()
                if "deploy" in m.lifecycle
            }
            _print_environment(ctx.server.environment(), ctx.scratch, serving)
            wait_until_interrupted()
        if not report.ok:  # the failed step and its reason are in the summary
            raise typer.Exit(ExitCode.FAILED_CHECK)
    finally:
        ctx.close()
        if not keep:
            shutil.rmtree(scratch, ignore_errors=True)


def _selected(models: str | None, hosted: tuple[str, ...]) -> tuple[str, ...] | None:
    """The models `--models` names (None: every model); a name the stack does not host fails."""
    if models is None:
        return None
    names = [n.strip() for n in models.split(",") if n.strip()]
    if not names:
        fail(f"--models {models!r}: name at least one model of: {', '.join(hosted)}")
    unknown = [n for n in names if n not in hosted]
    if unknown:
        fail(
            f"--models: stack {STACK!r} hosts no model {', '.join(map(repr, unknown))}; its "
            f"models: {', '.join(hosted) or 'none'} (add one under `ml-platform:models` in "
            f"Pulumi.{STACK}.yaml)"
        )
    return tuple(dict.fromkeys(names))


def _print_summary(console: Console, report: SandboxReport) -> None:
    """The report's tables. Every cell that holds text of the run is escaped: gate rules such as
    `roc_auc floor [contract_type=two-year]` would otherwise read as console markup and vanish."""
    from rich.markup import escape
    from rich.table import Table

    steps = Table("step", "status", "seconds", "detail", title=f"sandbox / {report.stack}")
    colors = {"ok": "green", "failed": "red", "not-run": "dim"}
    for s in report.steps:
        steps.add_row(
            escape(s.name),
            f"[{colors[s.status]}]{s.status}[/]",
            f"{s.seconds:.2f}",
            escape(s.error or s.detail),
        )
    console.print(steps)
    data = report.to_json()["resources"]
    if data["realized"] or data["notEmulated"]:
        resources = Table("type", "realized", title="resources")
        for type_, n in data["realized"].items():
            resources.add_row(type_, str(n))
        console.print(resources)
    if data["notEmulated"]:
        missing = Table("type", "name", "not emulated because", title="not emulated")
        for item in data["notEmulated"]:
            missing.add_row(escape(item["type"]), escape(item["name"]), escape(item["reason"]))
        console.print(missing)
    if data["notes"]:
        # the same note on several resources of a type is shown once, with their names
        grouped: dict[tuple[str, str], list[str]] = {}
        for item in data["notes"]:
            grouped.setdefault((item["type"], item["note"]), []).append(item["name"])
        notes = Table("type", "names", "note", title="notes (what moto cannot hold)")
        for (type_, note), names in sorted(grouped.items()):
            notes.add_row(type_.rsplit(":", 1)[-1], escape(", ".join(sorted(names))), escape(note))
        console.print(notes)
    from mlplat.sandbox.ml_lifecycle import summary_rows

    rows = summary_rows(report.to_json())
    if rows:
        lifecycle = Table("", "", title="the lifecycle", show_header=False)
        for what, figure in rows:
            lifecycle.add_row(escape(what), escape(figure))
        console.print(lifecycle)
    verdict = "[green]every step passed[/]" if report.ok else "[red]the sandbox failed[/]"
    console.print(f"{verdict} in {report.seconds:.1f} s")


def _print_environment(
    env: dict[str, str], scratch: Path, serving: dict[str, str] | None = None
) -> None:
    """How to explore the kept sandbox; `serving`: model -> the URL its endpoint is served at."""
    lines = [
        f"sandbox running at {env['AWS_ENDPOINT_URL']} (Ctrl-C to stop)",
        "explore it with boto3 or the AWS CLI after:",
    ]
    lines += [f"  export {k}={v}" for k, v in env.items()]
    lines.append(f"platform outputs: {scratch / 'outputs.json'}")
    for model, url in (serving or {}).items():
        lines.append(f"{model} endpoint traffic: POST {url}/invocations (GET {url}/ping)")
    typer.echo("\n".join(lines))
