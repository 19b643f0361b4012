"""What the sandbox's steps share: the step, its result, the report and the context.

Steps talk to each other only through the `SandboxContext`: the server URL and session, the
platform outputs the program exported, the settings, a scratch directory, `state` (a
`SandboxState`: what one step hands the next, typed) and the report whose slots they fill.
`lifecycle` runs them.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Callable, Iterator, Mapping
from contextlib import contextmanager
from dataclasses import asdict, dataclass, field
from datetime import datetime
from pathlib import Path
from typing import TYPE_CHECKING, Any, Literal, TypeVar

from stacks.settings import Settings

if TYPE_CHECKING:
    import boto3
    import pandas as pd

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
class SandboxState:
    """What one step hands the next, typed. A value is None until the step named beside it ran;
    read it with its `need_...` accessor, which fails the reading step with "no <what> (did
    <step> run?)" instead."""

    # queue ARN -> URL of the on-call queues the stack's alarm subscriptions name
    oncall_queues: dict[str, str] | None = None  # prepare-oncall-queues
    platform: PlatformOutputs | None = None  # read from the exported outputs on first use
    hour: datetime | None = None  # the sandbox's clock: fixed on first use
    customers: pd.DataFrame | None = None  # generate-data
    version: ModelVersion | None = None  # pipeline (registered), then approve
    model_server: ModelServer | None = None  # deploy
    serving: Serving | None = None  # deploy
    exchanges: list[Exchange] | None = None  # send-traffic
    captured: Captured | None = None  # capture
    drift_machine: str | None = None  # drift: the state machine that runs the drift job

    def need_oncall_queues(self) -> dict[str, str]:
        return need(self.oncall_queues, "oncall queues", "prepare-oncall-queues")

    def need_customers(self) -> pd.DataFrame:
        return need(self.customers, "customers", "generate-data")

    def need_version(self, step: str = "pipeline") -> ModelVersion:
        return need(self.version, "version", step)

    def need_model_server(self) -> ModelServer:
        return need(self.model_server, "model server", "deploy")

    def need_serving(self) -> Serving:
        return need(self.serving, "serving", "deploy")

    def need_exchanges(self) -> list[Exchange]:
        return need(self.exchanges, "exchanges", "send-traffic")

    def need_captured(self) -> Captured:
        return need(self.captured, "capture", "capture")


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
    # how far each step got, in figures (rows, files, URLs): the lifecycle's own record
    lifecycle: dict[str, Any] = field(default_factory=dict)
    least_privilege: dict[str, Any] = field(default_factory=dict)
    prediction_logs: dict[str, Any] = field(default_factory=dict)

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
            "lifecycle": self.lifecycle,
            "leastPrivilege": self.least_privilege,
            "predictionLogs": self.prediction_logs,
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
    # what one step hands the next (frames, paths, ARNs), typed
    state: SandboxState = field(default_factory=SandboxState)
    # what `close` stops besides the moto server (the model server), last opened first
    closers: list[Callable[[], None]] = field(default_factory=list)
    _session: boto3.Session | None = field(default=None, repr=False)
    _session_of: SandboxServer | None = field(default=None, repr=False)
    _clients: dict[str, Any] = field(default_factory=dict, repr=False)

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
        if self._session is None or self._session_of is not self.server:
            self._session, self._session_of = self.server.session(), self.server
            self._clients.clear()
        return self._session

    def client(self, service: str, **credentials: str) -> Any:
        """A client of the sandbox (cached per service), or with other `credentials`
        (`aws_access_key_id`, `aws_secret_access_key`, `aws_session_token`: not cached)."""
        from botocore.config import Config

        key = service if not credentials else ""
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
