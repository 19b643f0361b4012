"""`mlplat preview`: evaluate the Pulumi program offline, check it, price it, write the plan."""

from __future__ import annotations

import json
from pathlib import Path
from typing import TYPE_CHECKING, Annotated, Any

import typer

from mlplat.cli import options
from mlplat.cli.errors import ExitCode, fail, usage_errors

if TYPE_CHECKING:
    from rich.console import Console

    from mlplat.plan.diff import PlanDiff
    from mlplat.plan.preview import PreviewResult

SEVERITY_STYLE = {"critical": "bold red", "high": "red", "medium": "yellow", "low": "cyan"}


def register(app: typer.Typer) -> None:
    app.command("preview")(preview)


def preview(
    stack: options.StackName,
    json_path: Annotated[
        Path | None, options.json_file("the plan (resources, outputs, policies, cost)")
    ] = None,
    project_dir: options.ProjectDir = None,
    diff_path: Annotated[
        Path | None,
        typer.Option("--diff", help="Compare with a baseline preview JSON (e.g. main's plan)."),
    ] = None,
    graph_path: Annotated[
        Path | None,
        typer.Option("--graph", help="Write the resource graph: .mmd/.md (Mermaid) or .dot."),
    ] = None,
    markdown_path: Annotated[
        Path | None,
        typer.Option("--markdown", help="Write a Markdown summary (for a PR comment)."),
    ] = None,
) -> None:
    """Run the Pulumi program offline under the recording engine: no CLI, account or network.

    Runs the policy pack over the plan and estimates the monthly cost.
    Exit codes: 0 ok, 1 a mandatory policy is violated, 2 bad configuration or usage.
    """
    from rich.console import Console

    from mlplat.plan.preview import find_project_dir, run_preview
    from stacks.settings import SettingsError

    baseline: dict[str, Any] | None = None
    if graph_path is not None:
        from mlplat.plan.graph import GraphError, format_for

        with usage_errors(GraphError):
            format_for(graph_path)
    if diff_path is not None:
        from mlplat.plan.diff import DiffError, load_plan_json

        with usage_errors(DiffError):
            baseline = load_plan_json(diff_path)

    with usage_errors(SettingsError):
        result = run_preview(stack, project_dir or find_project_dir())

    console = Console()
    _print_plan(console, result)
    _print_policies(console, result)
    _print_cost(console, result)
    current = result.to_json()
    diff = None
    if baseline is not None:
        from mlplat.plan.diff import diff_plans

        diff = diff_plans(baseline, current)
        _print_diff(console, diff)
    if graph_path is not None:
        from mlplat.plan.graph import write_graph

        fmt = write_graph(current, graph_path)
        console.print(f"graph ({fmt}) written to {graph_path}")
    if json_path is not None:
        json_path.write_text(json.dumps(current, indent=2, sort_keys=True) + "\n")
        console.print(f"plan written to {json_path}")
    if markdown_path is not None:
        from mlplat.plan.diff import render_markdown

        markdown_path.write_text(render_markdown(stack, current, diff), encoding="utf-8")
        console.print(f"summary written to {markdown_path}")
    if result.policies.mandatory_failed:
        names = sorted(
            {v.policy for v in result.policies.violations if v.enforcement == "mandatory"}
        )
        fail(f"mandatory policies violated: {', '.join(names)}", ExitCode.FAILED_CHECK)


def _print_plan(console: Console, result: PreviewResult) -> None:
    from rich.table import Table

    from mlplat.plan.preview import counts

    plan = result.plan
    table = Table(
        "component",
        "type",
        "count",
        title=f"{plan.project} / {plan.stack}: {len(plan.resources)} resources",
    )
    for (component, type_), n in sorted(counts(plan).items()):
        table.add_row(component, type_, str(n))
    console.print(table)
    outputs = Table("output", "value", title="outputs")
    for key, value in sorted(plan.outputs.items()):
        outputs.add_row(key, json.dumps(value) if not isinstance(value, str) else value)
    console.print(outputs)


def _print_policies(console: Console, result: PreviewResult) -> None:
    from rich.markup import escape

    report = result.policies
    if not report.violations:
        console.print("[green]policies: no violations[/green]")
    for severity, found in report.by_severity().items():
        if not found:
            continue
        style = SEVERITY_STYLE[severity]
        console.print(f"[{style}]{severity.upper()} ({len(found)})[/{style}]")
        for v in found:
            console.print(f"  [{style}]{v.enforcement:9}[/{style}] {v.policy}: {escape(v.message)}")
    if report.skipped:
        console.print(
            f"[dim]{len(report.skipped)} check(s) skipped: values unknown until "
            "the update runs[/dim]"
        )
        for s in report.skipped:
            console.print(f"[dim]  {s.policy}: {escape(s.message)}[/dim]")


def _print_cost(console: Console, result: PreviewResult) -> None:
    from rich.table import Table

    cost = result.cost
    for note in cost.notes:
        console.print(f"[yellow]cost: {note}[/yellow]")
    table = Table(
        "component",
        "USD / month",
        title=f"estimated cost ({cost.region}, list prices as published on "
        f"{cost.published}, verify)",
    )
    for component, usd in cost.by_component().items():
        table.add_row(component, f"{usd:,.2f}")
    table.add_row("[bold]total[/bold]", f"[bold]{cost.monthly_usd:,.2f}[/bold]")
    console.print(table)
    for item in cost.items:
        if item.note:
            console.print(f"[yellow]cost: {item.name}: {item.note}[/yellow]")


def _print_diff(console: Console, diff: PlanDiff) -> None:
    from rich.markup import escape

    from mlplat.plan.diff import render_text

    for line in render_text(diff):
        console.print(escape(line))
    for warning in diff.warnings:
        console.print(f"[bold red]WARNING: {escape(warning)}[/bold red]")
