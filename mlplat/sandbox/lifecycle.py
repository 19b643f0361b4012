"""The sandbox's step runner and its steps.

A step is a name and a function of the `SandboxContext` (`mlplat.sandbox.context`); a
`ModelStep` is a function of the context and a model's name, run once per model of the run (the
stack's `models`, or those `--models` names) as the step `<step>:<model>`. Steps run in order
(neighbours with the same `together` at the same time, each in a thread), each finished step is
printed as a line, the first failure stops the run (its reason is recorded, later steps are
`not-run`), and each step's status and seconds go into the `SandboxReport`.

Steps that run together share the context: each writes its own model's state and report (and
the least-privilege record, a list it appends to), and `SandboxContext.client` and
`SandboxServer.iam_enforced` may be used from several threads at once.

`PLATFORM_STEPS` start moto, create what the stack expects to exist outside it (the on-call
queues), realize the program, read it back and open the queues to the realized topic;
`ML_STEPS` (`mlplat.sandbox.ml_lifecycle`, the steps in `mlplat.sandbox.steps`) run the ML
lifecycle on the realized platform. Adding a step is one function
`def my_step(ctx: SandboxContext) -> str` (`(ctx, model: str)` for a `ModelStep`; the returned
text is the step's one-line detail; raise `StepFailed` or any exception to fail it) and one entry
in a step tuple; what it hands a later step is a typed field of `SandboxState` (`ctx.state`, a
model's own in `ctx.state.model(name)`).
"""

from __future__ import annotations

import json
import threading
import time
from collections.abc import Callable, Sequence
from typing import TYPE_CHECKING

from mlplat.sandbox.context import (
    ModelStep,
    SandboxContext,
    SandboxReport,
    SandboxState,
    Status,
    Step,
    StepFailed,
    StepResult,
    expand,
)
from mlplat.sandbox.ml_lifecycle import ML_STEPS

if TYPE_CHECKING:
    from rich.console import Console

__all__ = [
    "ML_STEPS",
    "PLATFORM_STEPS",
    "STEPS",
    "ModelStep",
    "SandboxContext",
    "SandboxReport",
    "SandboxState",
    "Status",
    "Step",
    "StepFailed",
    "StepResult",
    "expand",
    "run_steps",
]


# --- the platform steps


def start_server(ctx: SandboxContext) -> str:
    from mlplat.sandbox.server import SandboxServer

    if ctx.server is None or not ctx.server.running:
        ctx.server = SandboxServer(ctx.settings.region).start()
    ctx.report.server_url = ctx.server.url
    account = ctx.client("sts").get_caller_identity()["Account"]
    if account != ctx.settings.account_id:
        raise StepFailed(
            f"the moto server answers for account {account} but stack {ctx.settings.stack!r} "
            f'has accountId {ctx.settings.account_id}: set `ml-platform:accountId: "{account}"` '
            "in its stack file (or MOTO_ACCOUNT_ID before starting)"
        )
    return ctx.server.url


def start_containers(ctx: SandboxContext) -> str:
    """The pipeline containers' fork server, started now so that it imports the platform's
    modules, the models' runtimes and their frameworks on the other core while the program is
    realized (the first pipeline step would otherwise wait for it)."""
    from ml.models import spec
    from mlplat.sandbox.pipeline import start_containers as start

    models = [m.name for m in ctx.settings.models if m.name in ctx.models and m.pipeline.enabled]
    if not models:
        return "no pipeline runs: nothing to start"
    start(models)
    frameworks = sorted({spec(m).framework for m in models})
    return (
        f"fork server importing the platform's modules, the runtimes of {', '.join(models)} "
        f"and {', '.join(frameworks)}"
    )


def realize_platform(ctx: SandboxContext) -> str:
    from mlplat.sandbox.realize import RealizingMocks, context_for, realize

    mocks = RealizingMocks(ctx.settings, context_for(ctx.session, ctx.url, ctx.settings))
    ctx.mocks = mocks
    plan = realize(ctx.settings, ctx.config, mocks, ctx.program)
    ctx.outputs = dict(plan.outputs)
    report = ctx.report
    report.realized = sorted(mocks.realized)
    report.not_emulated = sorted(mocks.not_emulated)
    report.failed_resources = sorted(mocks.failed)
    report.notes = sorted(mocks.notes)
    report.outputs = ctx.outputs
    (ctx.scratch / "outputs.json").write_text(json.dumps(ctx.outputs, indent=2, sort_keys=True))
    if mocks.failed:
        lines = "; ".join(f"{t} {n!r}: {e}" for t, n, e in sorted(mocks.failed))
        raise StepFailed(f"{len(mocks.failed)} resource(s) could not be realized: {lines}")
    return (
        f"{len(mocks.realized)} realized, {len(mocks.not_emulated)} not emulated, "
        f"{len(plan.resources) - len(mocks.realized) - len(mocks.not_emulated)} components"
    )


def verify_platform(ctx: SandboxContext) -> str:
    if ctx.mocks is None:
        raise StepFailed("nothing was realized (did realize-platform run?)")
    problems = ctx.mocks.verify()
    if problems:
        lines = "; ".join(f"{t} {n!r}: {e}" for t, n, e in problems)
        raise StepFailed(f"{len(problems)} realized resource(s) cannot be read back: {lines}")
    return f"{len(ctx.mocks.realized)} resources read back"


def prepare_oncall_queues(ctx: SandboxContext) -> str:
    """Create the SQS queues the stack's `alarmSubscriptions` name (they live outside the stack:
    the on-call team owns them), so the topic's subscriptions have somewhere to deliver."""
    queues: dict[str, str] = {}
    for sub in ctx.settings.on_call.subscriptions:
        if sub.protocol != "sqs":
            continue
        parts = sub.endpoint.split(":")
        if len(parts) != 6 or parts[2] != "sqs":
            raise StepFailed(f"alarm subscription endpoint {sub.endpoint!r} is not a queue ARN")
        region, account, name = parts[3], parts[4], parts[5]
        if (region, account) != (ctx.settings.region, ctx.settings.account_id):
            raise StepFailed(
                f"alarm subscription queue {sub.endpoint} is in {account}/{region}; the sandbox "
                f"holds only {ctx.settings.account_id}/{ctx.settings.region}"
            )
        queues[sub.endpoint] = ctx.client("sqs").create_queue(QueueName=name)["QueueUrl"]
    ctx.state.oncall_queues = queues
    return f"{len(queues)} queue(s): {', '.join(q.rsplit(':', 1)[-1] for q in queues) or 'none'}"


def allow_oncall_delivery(ctx: SandboxContext) -> str:
    """Let the stack's on-call topic (now realized) send to the queues, and check each queue is
    subscribed: a queue policy allowing `sns.amazonaws.com` SendMessage for exactly that topic."""
    queues = ctx.state.oncall_queues or {}
    topic = ctx.outputs.get("alarm_topic_arn")
    if not topic:
        raise StepFailed("the platform outputs have no alarm_topic_arn (did realize-platform run?)")
    sqs, sns = ctx.client("sqs"), ctx.client("sns")
    subscribed = {
        s["Endpoint"]
        for page in sns.get_paginator("list_subscriptions_by_topic").paginate(TopicArn=topic)
        for s in page["Subscriptions"]
        if s["Protocol"] == "sqs"
    }
    for arn, url in queues.items():
        if arn not in subscribed:
            raise StepFailed(f"queue {arn} is not subscribed to {topic}")
        policy = {
            "Version": "2012-10-17",
            "Statement": [
                {
                    "Sid": "OnCallTopic",
                    "Effect": "Allow",
                    "Principal": {"Service": "sns.amazonaws.com"},
                    "Action": "sqs:SendMessage",
                    "Resource": arn,
                    "Condition": {"ArnEquals": {"aws:SourceArn": topic}},
                }
            ],
        }
        sqs.set_queue_attributes(QueueUrl=url, Attributes={"Policy": json.dumps(policy)})
    return f"{len(queues)} queue(s) subscribed to {topic.rsplit(':', 1)[-1]} and open to it"


PLATFORM_STEPS: tuple[Step, ...] = (
    Step("start-server", start_server, "moto on 127.0.0.1, a free port"),
    Step("start-containers", start_containers, "the pipeline containers' fork server, warming"),
    Step("prepare-oncall-queues", prepare_oncall_queues, "the queues alarms are subscribed to"),
    Step("realize-platform", realize_platform, "run the program, realizing each resource"),
    Step("verify-platform", verify_platform, "read every realized resource back"),
    Step("allow-oncall-delivery", allow_oncall_delivery, "the on-call queues accept the topic"),
)

STEPS: tuple[Step | ModelStep, ...] = (*PLATFORM_STEPS, *ML_STEPS)


# --- running them


def run_steps(
    ctx: SandboxContext,
    steps: Sequence[Step | ModelStep] = STEPS,
    console: Console | None = None,
) -> SandboxReport:
    """Run `steps` in order, each `ModelStep` once per model of the run (`ctx.models`); steps next
    to each other with the same `together` run at the same time, each in its own thread. Stop at
    the first failure (the steps running with it finish first). Returns (and fills)
    `ctx.report`, whose `seconds` is the run's wall time."""
    from rich.console import Console
    from rich.markup import escape
    from rich.progress import Progress, SpinnerColumn, TextColumn, TimeElapsedColumn

    steps = expand(steps, ctx.models)
    names = [s.name for s in steps]
    duplicates = sorted({n for n in names if names.count(n) > 1})
    if duplicates:
        raise ValueError(f"step names must be unique; repeated: {', '.join(duplicates)}")
    console = console or Console(stderr=True)
    results = [StepResult(s.name, model=s.model) for s in steps]
    ctx.report.steps = results
    began = time.perf_counter()
    # The live display holds the running steps only (a finished one is printed as a line and
    # leaves it): redrawn a few times a second in a terminal, never elsewhere (a redraw renders
    # every task it holds, in a thread that would take the GIL from the steps).
    live = console.is_terminal and not console.is_dumb_terminal
    with Progress(
        SpinnerColumn(),
        TextColumn("{task.description}"),
        TimeElapsedColumn(),
        console=console,
        transient=True,
        auto_refresh=live,
        refresh_per_second=4,
    ) as progress:

        def run_one(step: Step, result: StepResult) -> None:
            task = progress.add_task(f"{step.name}", total=1)
            started = time.perf_counter()
            try:
                detail = step.fn(ctx)
            except Exception as exc:  # the step's failure is the report's content
                result.status = "failed"
                result.error = (
                    str(exc) if isinstance(exc, StepFailed) else f"{type(exc).__name__}: {exc}"
                )
                line = f"[red]✗ {step.name}: failed[/red] {escape(result.error[:200])}"
            else:
                result.status = "ok"
                result.detail = detail or ""
                line = f"[green]✓ {step.name}[/green] {escape(result.detail)}"
            result.seconds = time.perf_counter() - started
            progress.remove_task(task)
            progress.console.print(f"{line} [dim]({result.seconds:.1f} s)[/dim]")

        for group in _groups(list(zip(steps, results, strict=True))):
            if len(group) == 1:
                run_one(*group[0])
            else:
                _run_together(ctx, group, run_one)
            if any(result.status == "failed" for _, result in group):
                break
    ctx.report.wall_seconds = time.perf_counter() - began
    return ctx.report


def _run_together(
    ctx: SandboxContext,
    group: list[tuple[Step, StepResult]],
    run_one: Callable[[Step, StepResult], None],
) -> None:
    """`run_one` of every step of `group`, each in its own thread; returns when all are done.
    The threads are daemons and this thread waits in short joins, so Ctrl-C stops the sandbox at
    once, as it does a step that runs alone (the steps' threads end with the process)."""
    for step, _ in group:  # the models' slots in the stack's order, not the threads'
        if step.model is not None:
            ctx.state.model(step.model)
            ctx.report.model(step.model)
    threads = [
        threading.Thread(target=run_one, args=pair, name=f"sandbox-{pair[0].name}", daemon=True)
        for pair in group
    ]
    for thread in threads:
        thread.start()
    for thread in threads:
        while thread.is_alive():
            thread.join(0.25)


def _groups(pairs: list[tuple[Step, StepResult]]) -> list[list[tuple[Step, StepResult]]]:
    """The steps in runs: neighbours with the same `together` in one run, any other alone."""
    groups: list[list[tuple[Step, StepResult]]] = []
    for pair in pairs:
        together = pair[0].together
        if groups and together is not None and groups[-1][0][0].together == together:
            groups[-1].append(pair)
        else:
            groups.append([pair])
    return groups
