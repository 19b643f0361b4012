"""The sandbox's step runner and its report.

A step is a name and a function of the `SandboxContext`; steps run in order under a rich progress
display, the first failure stops the run (its reason is recorded, later steps are `not-run`), and
each step's status and seconds go into the `SandboxReport`. Steps talk to each other only through
the context: the server URL and session, the platform outputs the program exported, the settings,
a scratch directory and the report (whose ML slots later steps fill).

Adding a step is one function `def my_step(ctx: SandboxContext) -> str` (the returned text is the
step's one-line detail; raise `StepFailed` or any exception to fail it) and one entry in
`ML_STEPS`.
"""

from __future__ import annotations

import json
import time
from collections import Counter
from collections.abc import Callable, Iterator, Mapping, Sequence
from contextlib import contextmanager
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any, Literal

from stacks.settings import Settings

if TYPE_CHECKING:
    import boto3
    from rich.console import Console

    from stacks.sandbox.realize import RealizingMocks
    from stacks.sandbox.server import SandboxServer

Status = Literal["ok", "failed", "not-run"]


class StepFailed(RuntimeError):
    """A step's clear reason for failing (shown without a traceback)."""


@dataclass(frozen=True, slots=True)
class Step:
    name: str
    fn: Callable[[SandboxContext], str | None]
    description: str = ""


@dataclass(slots=True)
class StepResult:
    name: str
    status: Status = "not-run"
    seconds: float = 0.0
    detail: str = ""
    error: str = ""


@dataclass(slots=True)
class SandboxReport:
    """What `mlplat sandbox --json` writes. The ML slots stay empty until their steps land."""

    stack: str
    server_url: str = ""
    steps: list[StepResult] = field(default_factory=list)
    realized: list[tuple[str, str, str]] = field(default_factory=list)
    not_emulated: list[tuple[str, str, str]] = field(default_factory=list)
    failed_resources: list[tuple[str, str, str]] = field(default_factory=list)
    notes: list[tuple[str, str, str]] = field(default_factory=list)
    outputs: dict[str, Any] = field(default_factory=dict)
    # filled by the ML lifecycle steps
    model_version: str | None = None
    metrics: dict[str, float] = field(default_factory=dict)
    predictions_served: int | None = None
    drift: dict[str, Any] = field(default_factory=dict)
    alarm_states: dict[str, str] = field(default_factory=dict)
    notifications: list[dict[str, Any]] = field(default_factory=list)

    @property
    def ok(self) -> bool:
        return bool(self.steps) and all(s.status == "ok" for s in self.steps)

    @property
    def seconds(self) -> float:
        return sum(s.seconds for s in self.steps)

    def to_json(self) -> dict[str, Any]:
        by_type = Counter(t for t, _, _ in self.realized)
        return {
            "stack": self.stack,
            "ok": self.ok,
            "seconds": round(self.seconds, 3),
            "serverUrl": self.server_url,
            "steps": [{**asdict(s), "seconds": round(s.seconds, 3)} for s in self.steps],
            "resources": {
                "realized": dict(sorted(by_type.items())),
                "realizedCount": len(self.realized),
                "notEmulatedByType": dict(
                    sorted(Counter(t for t, _, _ in self.not_emulated).items())
                ),
                "notEmulated": [
                    {"type": t, "name": n, "reason": r} for t, n, r in sorted(self.not_emulated)
                ],
                "failed": [
                    {"type": t, "name": n, "error": e} for t, n, e in sorted(self.failed_resources)
                ],
                "notes": [{"type": t, "name": n, "note": x} for t, n, x in sorted(self.notes)],
            },
            "outputs": self.outputs,
            "modelVersion": self.model_version,
            "metrics": self.metrics,
            "predictionsServed": self.predictions_served,
            "drift": self.drift,
            "alarmStates": self.alarm_states,
            "notifications": self.notifications,
        }


@dataclass
class SandboxContext:
    """Shared by the steps. `program` is the Pulumi program to realize (None: the stack's own
    `stacks/__main__.py`, i.e. `build(settings)`)."""

    settings: Settings
    config: Mapping[str, Any]
    scratch: Path
    report: SandboxReport
    program: Callable[[], None] | None = None
    server: SandboxServer | None = None
    mocks: RealizingMocks | None = None
    outputs: dict[str, Any] = field(default_factory=dict)

    @property
    def url(self) -> str:
        if self.server is None or not self.server.running:
            raise StepFailed("the sandbox server is not running (did start-server run?)")
        return self.server.url

    @property
    def session(self) -> boto3.Session:
        if self.server is None:
            raise StepFailed("the sandbox server is not running (did start-server run?)")
        return self.server.session()

    def client(self, service: str) -> Any:
        return self.session.client(service, endpoint_url=self.url)  # type: ignore[call-overload]

    @contextmanager
    def aws_environment(self) -> Iterator[None]:
        """Point code that makes its own boto3 clients (`ml/`) at the sandbox while inside."""
        from stacks.sandbox.server import environment_for, pointed_at

        with pointed_at(environment_for(self.url, self.settings.region)):
            yield


# --- the platform steps


def start_server(ctx: SandboxContext) -> str:
    from stacks.sandbox.server import SandboxServer

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


def realize_platform(ctx: SandboxContext) -> str:
    from stacks import engine
    from stacks.sandbox.realize import RealizingMocks, context_for

    mocks = RealizingMocks(ctx.settings, context_for(ctx.session, ctx.url, ctx.settings))
    ctx.mocks = mocks
    plan = engine.run(ctx.settings, ctx.config, mocks=mocks, program=ctx.program)
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


PLATFORM_STEPS: tuple[Step, ...] = (
    Step("start-server", start_server, "moto on 127.0.0.1, a free port"),
    Step("realize-platform", realize_platform, "run the program, realizing each resource"),
    Step("verify-platform", verify_platform, "read every realized resource back"),
)

# The ML lifecycle, in order, as `ml/` lands: generate-data, ingest, curate, features, train,
# evaluate, register, approve, deploy, invoke, capture, drift, alarms.
ML_STEPS: tuple[Step, ...] = ()

STEPS: tuple[Step, ...] = (*PLATFORM_STEPS, *ML_STEPS)


# --- running them


def run_steps(
    ctx: SandboxContext,
    steps: Sequence[Step] = STEPS,
    console: Console | None = None,
) -> SandboxReport:
    """Run `steps` in order; stop at the first failure. Returns (and fills) `ctx.report`."""
    from rich.console import Console
    from rich.progress import Progress, SpinnerColumn, TextColumn, TimeElapsedColumn

    names = [s.name for s in steps]
    duplicates = sorted({n for n in names if names.count(n) > 1})
    if duplicates:
        raise ValueError(f"step names must be unique; repeated: {', '.join(duplicates)}")
    console = console or Console(stderr=True)
    results = [StepResult(s.name) for s in steps]
    ctx.report.steps = results
    with Progress(
        SpinnerColumn(),
        TextColumn("{task.description}"),
        TimeElapsedColumn(),
        console=console,
        transient=False,
    ) as progress:
        for step, result in zip(steps, results, strict=True):
            task = progress.add_task(f"{step.name}", total=1)
            started = time.perf_counter()
            try:
                detail = step.fn(ctx)
            except Exception as exc:  # the step's failure is the report's content
                result.seconds = time.perf_counter() - started
                result.status = "failed"
                result.error = (
                    str(exc) if isinstance(exc, StepFailed) else f"{type(exc).__name__}: {exc}"
                )
                progress.update(
                    task,
                    completed=1,
                    description=f"[red]{step.name}: failed[/red] {result.error[:200]}",
                )
                break
            result.seconds = time.perf_counter() - started
            result.status = "ok"
            result.detail = detail or ""
            progress.update(
                task, completed=1, description=f"[green]{step.name}[/green] {result.detail}"
            )
    return ctx.report
