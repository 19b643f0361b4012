"""What the sandbox's steps share: the step, its result, the report and the context.

Steps talk to each other only through the `SandboxContext`: the server URL and session, the
platform outputs the program exported, the settings, a scratch directory, `state` (a
`SandboxState`: what one step hands the next, typed) and the report whose slots they fill.
`lifecycle` runs them. A `ModelStep` is a step every model takes: `lifecycle.run_steps` expands it
into one `Step` per model of the run (`<step>:<model>`), each with its own `ModelState` and
`ModelReport`.
"""

from __future__ import annotations

import threading
from collections import Counter
from collections.abc import Callable, Iterator, Mapping, Sequence
from contextlib import contextmanager
from dataclasses import asdict, dataclass, field
from datetime import datetime
from pathlib import Path
from typing import TYPE_CHECKING, Any, Literal, TypeVar

from stacks.settings import Settings

if TYPE_CHECKING:
    import boto3
    import pandas as pd

    from ml.model import Model
    from ml.outputs import PlatformOutputs
    from ml.registry import ModelVersion
    from ml.serve import ModelServer
    from mlplat.sandbox.realize import RealizingMocks
    from mlplat.sandbox.server import SandboxServer
    from mlplat.sandbox.steps.serving import Captured, Exchange, Serving

Status = Literal["ok", "failed", "not-run"]
T = TypeVar("T")


class StepFailed(RuntimeError):
    """A step's clear reason for failing (shown without a traceback)."""


def need(value: T | None, what: str, step: str) -> T:
    """`value`, which an earlier `step` leaves; a clear failure when that step did not run."""
    if value is None:
        raise StepFailed(f"no {what} (did {step} run?)")
    return value


@dataclass
class ModelState:
    """What one model's steps hand its later steps, typed (`SandboxState.model(name)`). A value is
    None until the step named beside it ran for this model; read it with its `need_...` accessor,
    which fails the reading step with "no <what> of <model> (did <step>:<model> run?)"."""

    name: str
    runtime: Model | None = None  # `ml.models.load(name)`, loaded on first use
    drift_environment: dict[str, str] | None = None  # its drift job's, read on first use
    drift_role: str | None = None  # the role its drift job runs as, read with the environment
    version: ModelVersion | None = None  # pipeline (registered), then approve
    model_server: ModelServer | None = None  # deploy: the one serving the endpoint now
    # every version served so far, by model package ARN: deploy, skewed-handler
    model_servers: dict[str, ModelServer] = field(default_factory=dict)
    serving: Serving | None = None  # deploy
    exchanges: list[Exchange] | None = None  # send-traffic
    captured: Captured | None = None  # capture
    # the hour of traffic the hand-edited (skewed) handler served: skewed-handler
    skewed_exchanges: list[Exchange] | None = None

    def _need(self, value: T | None, what: str, step: str) -> T:
        return need(value, f"{what} of {self.name}", f"{step}:{self.name}")

    def need_version(self, step: str = "pipeline") -> ModelVersion:
        return self._need(self.version, "version", step)

    def need_model_server(self) -> ModelServer:
        return self._need(self.model_server, "model server", "deploy")

    def need_serving(self) -> Serving:
        return self._need(self.serving, "serving", "deploy")

    def need_exchanges(self) -> list[Exchange]:
        return self._need(self.exchanges, "exchanges", "send-traffic")

    def need_captured(self) -> Captured:
        return self._need(self.captured, "capture", "capture")


@dataclass
class SandboxState:
    """What one step hands the next, typed. A value is None until the step named beside it ran;
    read it with its `need_...` accessor, which fails the reading step with "no <what> (did
    <step> run?)" instead. Each model's own is in `models` (`model(name)`)."""

    # queue ARN -> URL of the on-call queues the stack's alarm subscriptions name
    oncall_queues: dict[str, str] | None = None  # prepare-oncall-queues
    platform: PlatformOutputs | None = None  # read from the exported outputs on first use
    hour: datetime | None = None  # the sandbox's clock: fixed on first use
    customers: pd.DataFrame | None = None  # generate-data
    # the customers of the two hours of traffic, sent to every model: first send-traffic
    traffic: tuple[pd.DataFrame, pd.DataFrame] | None = None
    # the customers of the hour the skewed handler serves, sent to every model: first skewed-handler
    skewed_traffic: pd.DataFrame | None = None
    # when the outcomes of every prediction came back (the label horizon later): labels
    labels_observed_at: datetime | None = None
    models: dict[str, ModelState] = field(default_factory=dict)

    def model(self, name: str) -> ModelState:
        if name not in self.models:
            self.models[name] = ModelState(name)
        return self.models[name]

    def need_oncall_queues(self) -> dict[str, str]:
        return need(self.oncall_queues, "oncall queues", "prepare-oncall-queues")

    def need_customers(self) -> pd.DataFrame:
        return need(self.customers, "customers", "generate-data")


@dataclass(frozen=True, slots=True)
class Step:
    """One step: `fn(ctx)`'s returned text is its one-line detail. A model's step (made by
    `ModelStep.for_model`) is named `<step>:<model>` and carries the model's name."""

    name: str
    fn: Callable[[SandboxContext], str | None]
    description: str = ""
    model: str | None = None
    # steps next to each other with the same `together` run at the same time, each in its own
    # thread (the report keeps their order); None: alone
    together: str | None = None


@dataclass(frozen=True, slots=True)
class ModelStep:
    """A step every model of the run takes: `fn(ctx, model)`, as the step `<name>:<model>`
    (`run_steps` expands it, in the stack's `models` order, where it stands). With `together`,
    the models' steps (and any neighbour with the same `together`) run at the same time: each
    model's own state, the shared state read only."""

    name: str
    fn: Callable[[SandboxContext, str], str | None]
    description: str = ""
    together: str | None = None

    def for_model(self, model: str) -> Step:
        fn = self.fn
        return Step(
            f"{self.name}:{model}",
            lambda ctx: fn(ctx, model),
            self.description,
            model,
            self.together,
        )


def expand(steps: Sequence[Step | ModelStep], models: Sequence[str]) -> list[Step]:
    """`steps` with each `ModelStep` replaced by one step per model, in `models` order."""
    out: list[Step] = []
    for step in steps:
        if isinstance(step, ModelStep):
            out += [step.for_model(m) for m in models]
        else:
            out.append(step)
    return out


@dataclass(slots=True)
class StepResult:
    name: str
    status: Status = "not-run"
    seconds: float = 0.0
    detail: str = ""
    error: str = ""
    model: str | None = None  # the model a model's step ran for


# The two metrics of each task the summary shows (the report keeps every metric).
HEADLINE_METRICS: dict[str, tuple[tuple[str, str], ...]] = {
    "binary_classification": (("roc_auc", "ROC AUC"), ("log_loss", "log loss")),
    "regression": (("rmse", "RMSE"), ("mae", "MAE")),
}


@dataclass(slots=True)
class ModelReport:
    """One model's part of the report, filled by its steps."""

    name: str
    task: str = ""
    model_version: str | None = None
    metrics: dict[str, float] = field(default_factory=dict)
    endpoint: str | None = None
    predictions_served: int | None = None
    drift: dict[str, Any] = field(default_factory=dict)
    # its drift alarms (one per feature, and the prediction's) -> state, after the alarms step
    drift_alarms: dict[str, str] = field(default_factory=dict)
    prediction_logs: dict[str, Any] = field(default_factory=dict)
    # online quality per version (the labels joined with the predictions), its shortfall against
    # each version's offline figures, the skew share and the model's age, from the monitor job
    online_quality: dict[str, Any] = field(default_factory=dict)
    skew: dict[str, Any] = field(default_factory=dict)
    model_age_days: float | None = None
    # its online quality, skew and model-age alarms -> state, after they were evaluated
    quality_alarms: dict[str, str] = field(default_factory=dict)
    # how far each of its steps got, in figures: step -> figures
    lifecycle: dict[str, Any] = field(default_factory=dict)

    @property
    def headline(self) -> dict[str, float]:
        """The task's two headline metrics (ROC AUC and log loss; RMSE and MAE)."""
        names = HEADLINE_METRICS.get(self.task, ())
        return {k: self.metrics[k] for k, _ in names if k in self.metrics}

    def to_json(self) -> dict[str, Any]:
        return {
            "task": self.task,
            "modelVersion": self.model_version,
            "metrics": self.metrics,
            "headline": self.headline,
            "endpoint": self.endpoint,
            "predictionsServed": self.predictions_served,
            "drift": self.drift,
            "driftAlarms": self.drift_alarms,
            "predictionLogs": self.prediction_logs,
            "onlineQuality": self.online_quality,
            "skew": self.skew,
            "modelAgeDays": self.model_age_days,
            "qualityAlarms": self.quality_alarms,
            "lifecycle": self.lifecycle,
        }


@dataclass(slots=True)
class SandboxReport:
    """What `mlplat sandbox --json` writes. The ML slots stay empty until their steps land; each
    model's are in `models` (in the stack's `models` order)."""

    stack: str
    server_url: str = ""
    steps: list[StepResult] = field(default_factory=list)
    realized: list[tuple[str, str, str]] = field(default_factory=list)
    not_emulated: list[tuple[str, str, str]] = field(default_factory=list)
    failed_resources: list[tuple[str, str, str]] = field(default_factory=list)
    notes: list[tuple[str, str, str]] = field(default_factory=list)
    outputs: dict[str, Any] = field(default_factory=dict)
    # filled by the ML lifecycle steps: each model's, then what the models share
    models: dict[str, ModelReport] = field(default_factory=dict)
    alarm_states: dict[str, str] = field(default_factory=dict)
    notifications: list[dict[str, Any]] = field(default_factory=list)
    # how far each shared step got, in figures (rows, files, URLs): the lifecycle's own record
    lifecycle: dict[str, Any] = field(default_factory=dict)
    least_privilege: dict[str, Any] = field(default_factory=dict)
    # the run's wall time (steps that run together overlap); None until `run_steps` ends
    wall_seconds: float | None = None

    def model(self, name: str) -> ModelReport:
        if name not in self.models:
            self.models[name] = ModelReport(name)
        return self.models[name]

    @property
    def ok(self) -> bool:
        return bool(self.steps) and all(s.status == "ok" for s in self.steps)

    @property
    def seconds(self) -> float:
        """The run's wall time: less than the steps' sum where steps ran together."""
        if self.wall_seconds is not None:
            return self.wall_seconds
        return sum(s.seconds for s in self.steps)

    def to_json(self) -> dict[str, Any]:
        by_type = Counter(t for t, _, _ in self.realized)
        return {
            "stack": self.stack,
            "ok": self.ok,
            "seconds": round(self.seconds, 3),
            "stepSeconds": round(sum(s.seconds for s in self.steps), 3),
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
            "models": {name: m.to_json() for name, m in self.models.items()},
            "alarmStates": self.alarm_states,
            "notifications": self.notifications,
            "lifecycle": self.lifecycle,
            "leastPrivilege": self.least_privilege,
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
    # the models whose steps run (`--models`); None: every model of the stack
    only: tuple[str, ...] | None = None
    server: SandboxServer | None = None
    mocks: RealizingMocks | None = None
    outputs: dict[str, Any] = field(default_factory=dict)
    # what one step hands the next (frames, paths, ARNs), typed
    state: SandboxState = field(default_factory=SandboxState)
    # what `close` stops besides the moto server (the model server), last opened first
    closers: list[Callable[[], None]] = field(default_factory=list)
    _session: boto3.Session | None = field(default=None, repr=False)
    _session_of: SandboxServer | None = field(default=None, repr=False)
    _clients: dict[str, Any] = field(default_factory=dict, repr=False)
    # a boto3 session is not thread-safe: steps that run together make their clients in turn
    _lock: threading.RLock = field(default_factory=threading.RLock, repr=False)

    @property
    def models(self) -> tuple[str, ...]:
        """The models the lifecycle runs for, in the stack's `models` order (the platform is
        realized for every model of the stack either way)."""
        hosted = tuple(m.name for m in self.settings.models)
        return hosted if self.only is None else tuple(m for m in hosted if m in self.only)

    @property
    def url(self) -> str:
        if self.server is None or not self.server.running:
            raise StepFailed("the sandbox server is not running (did start-server run?)")
        return self.server.url

    @property
    def session(self) -> boto3.Session:
        """One session per server: it caches the service models every client loads (a new
        session per client would parse them again, about 0.2 s each)."""
        if self.server is None:
            raise StepFailed("the sandbox server is not running (did start-server run?)")
        with self._lock:
            if self._session is None or self._session_of is not self.server:
                self._session, self._session_of = self.server.session(), self.server
                self._clients.clear()
            return self._session

    def client(self, service: str, **credentials: str) -> Any:
        """A client of the sandbox (cached per service), or with other `credentials`
        (`aws_access_key_id`, `aws_secret_access_key`, `aws_session_token`: not cached)."""
        from botocore.config import Config

        key = service if not credentials else ""
        with self._lock:
            if key and key in self._clients and self._session_of is self.server:
                return self._clients[key]
            client = self.session.client(  # type: ignore[call-overload]
                service,
                endpoint_url=self.url,
                region_name=self.settings.region,
                config=Config(s3={"addressing_style": "path"}, retries={"total_max_attempts": 1}),
                **credentials,
            )
            if key:
                self._clients[key] = client
            return client

    def close(self) -> None:
        """Stop what the steps started: the model server(s), then the moto server."""
        while self.closers:
            self.closers.pop()()
        if self.server is not None:
            self.server.stop()

    @contextmanager
    def aws_environment(self) -> Iterator[None]:
        """Point code that makes its own boto3 clients (`ml/`) at the sandbox while inside."""
        from mlplat.sandbox.server import environment_for, pointed_at

        with pointed_at(environment_for(self.url, self.settings.region)):
            yield
