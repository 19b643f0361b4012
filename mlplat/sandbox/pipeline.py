"""The sandbox executes a deployed SageMaker Pipeline definition as SageMaker would.

moto stores a pipeline (`CreatePipeline`, `DescribePipeline`) and records executions
(`StartPipelineExecution`), but runs nothing. `execute(...)` does what the SageMaker Pipelines
service does with the definition the stack realized, and nothing the definition does not say:

* parameters: the definition's defaults, overridden by the execution's `PipelineParameters`;
* expressions: `{"Get": "Parameters.X" | "Execution.X" | "Steps.<step>.<property path>"}`,
  `Std:Join` and `Std:JsonGet` (a step's property file), resolved when the step that uses them
  starts, so a step can only use what earlier steps produced;
* a **Processing** step: `ClusterConfig.InstanceCount` instances, each a subprocess that runs the
  container's `ContainerEntrypoint` + `ContainerArguments` with the step's `Environment`, the
  container paths (`/opt/ml/...`) mapped to the instance's scratch root; each `ProcessingInput`
  downloaded (`FullyReplicated`: all objects to every instance; `ShardedByS3Key`: the objects
  dealt out across the instances) and each `ProcessingOutput` uploaded with the output KMS key
  afterwards — every S3 call and the container itself under the step role's credentials while
  moto enforces IAM, as SageMaker uses the job's role. A non-zero exit fails the step with the
  tail of the container's stderr;
* a **Training** step: one container with the training contract (`/opt/ml/input/data/<channel>`,
  `hyperparameters.json`, `/opt/ml/model`), channels downloaded (a `FastFile` channel as a full
  copy: the sandbox has no lazy mount), the model directory uploaded as
  `<S3OutputPath>/<job>/output/model.tar.gz`; the reason is `/opt/ml/output/failure`;
* a **Condition** step: its conditions evaluated, then its `IfSteps` or `ElseSteps`;
* a **RegisterModel** step: `CreateModelPackage` with the step's own arguments, as the pipeline's
  role; a **Fail** step: the execution fails with its `ErrorMessage`.

Not emulated: retries, caching, managed spot interruptions (checkpoints are not restored), and
the execution's status in moto (which stays as moto records it); `PipelineRun` is the result.
A definition that references something missing (a step, a property, an output) fails with the
step's name and what it could not find.
"""

from __future__ import annotations

import json
import os
import re
import subprocess
import sys
import tarfile
import time
from collections.abc import Callable, Iterator, Mapping, Sequence
from contextlib import contextmanager
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

CONTAINER_ROOT = "/opt/ml/"
_PATH_TOKEN = re.compile(r"\.?([A-Za-z0-9_]+)|\[(?:'([^']*)'|\"([^\"]*)\"|(\d+))\]")
_TAIL = 1500  # characters of a failed container's stderr kept as its reason


class PipelineError(RuntimeError):
    """A step failed, or the definition cannot be executed; the message names the step."""


@dataclass
class StepRun:
    name: str
    type: str
    status: str = "NotStarted"  # Succeeded | Failed | Executing
    seconds: float = 0.0
    detail: str = ""
    failure: str | None = None

    def to_json(self) -> dict[str, Any]:
        return {
            "name": self.name,
            "type": self.type,
            "status": self.status,
            "seconds": round(self.seconds, 3),
            "detail": self.detail,
            "failure": self.failure,
        }


@dataclass
class PipelineRun:
    pipeline: str
    execution_arn: str
    parameters: dict[str, str]
    status: str = "Executing"  # Succeeded | Failed
    failure: str | None = None
    steps: list[StepRun] = field(default_factory=list)
    model_package_arn: str | None = None
    properties: dict[str, dict[str, Any]] = field(default_factory=dict, repr=False)
    property_files: dict[str, dict[str, Any]] = field(default_factory=dict, repr=False)

    @property
    def succeeded(self) -> bool:
        return self.status == "Succeeded"

    def to_json(self) -> dict[str, Any]:
        return {
            "pipeline": self.pipeline,
            "executionArn": self.execution_arn,
            "parameters": self.parameters,
            "status": self.status,
            "failure": self.failure,
            "modelPackageArn": self.model_package_arn,
            "steps": [s.to_json() for s in self.steps],
        }


# `as_role(role_arn)`: a context manager giving (service -> client signing as the role, the same
# credentials as container environment variables), valid while inside (moto enforcing IAM).
AsRole = Callable[[str], Any]


@dataclass
class Executor:
    """Runs executions of a pipeline's definition (see the module docstring)."""

    sagemaker: Any  # the sandbox's own client: DescribePipeline, StartPipelineExecution
    as_role: AsRole
    scratch: Path
    endpoint_url: str
    region: str
    python: str = sys.executable
    timeout_seconds: float = 900.0

    # --- the execution -------------------------------------------------------------------------

    def execute(
        self, pipeline: str, parameters: Mapping[str, str] | None = None, *, display_name: str = ""
    ) -> PipelineRun:
        described = self.sagemaker.describe_pipeline(PipelineName=pipeline)
        definition = json.loads(described["PipelineDefinition"])
        declared = {p["Name"]: p for p in definition.get("Parameters", [])}
        unknown = sorted(set(parameters or {}) - set(declared))
        if unknown:
            raise PipelineError(
                f"pipeline {pipeline} has no parameter(s) {', '.join(unknown)}; "
                f"parameters: {', '.join(sorted(declared)) or '(none)'}"
            )
        values = {n: str(p.get("DefaultValue", "")) for n, p in declared.items()}
        values.update({k: str(v) for k, v in (parameters or {}).items()})
        started = self.sagemaker.start_pipeline_execution(
            PipelineName=pipeline,
            PipelineExecutionDisplayName=display_name or f"sandbox-{int(time.time())}",
            PipelineParameters=[{"Name": k, "Value": v} for k, v in (parameters or {}).items()],
        )
        arn = str(started["PipelineExecutionArn"])
        run = PipelineRun(pipeline, arn, values)
        context = _Context(
            run=run,
            execution={
                "PipelineName": pipeline,
                "PipelineArn": str(described["PipelineArn"]),
                "PipelineExecutionArn": arn,
                "PipelineExecutionId": arn.rsplit("/", 1)[-1],
                "StartDateTime": datetime.now(UTC).strftime("%Y-%m-%dT%H:%M:%S.%fZ"),
                "CurrentDateTime": datetime.now(UTC).strftime("%Y-%m-%dT%H:%M:%S.%fZ"),
            },
            pipeline_role=str(described["RoleArn"]),
            root=self.scratch / arn.rsplit("/", 1)[-1],
        )
        try:
            queue = list(definition.get("Steps", []))
            while queue:
                self._run_step(queue.pop(0), context)
                queue[:0], context.pending = context.pending, []  # a Condition's branch is next
            run.status = "Succeeded"
        except PipelineError as exc:
            run.status, run.failure = "Failed", str(exc)
        return run

    def _run_step(self, step: Mapping[str, Any], context: _Context) -> None:
        name, kind = str(step.get("Name")), str(step.get("Type"))
        record = StepRun(name, kind, "Executing")
        context.run.steps.append(record)
        began = time.perf_counter()
        try:
            for dependency in step.get("DependsOn", []):
                context.need_step(name, str(dependency))
            runner = {
                "Processing": self._processing,
                "Training": self._training,
                "Condition": self._condition,
                "RegisterModel": self._register,
                "Fail": self._fail,
            }.get(kind)
            if runner is None:
                raise PipelineError(f"step {name}: the sandbox cannot run a {kind} step")
            record.detail = runner(step, context) or ""
            record.status = "Succeeded"
        except PipelineError as exc:
            record.status, record.failure = "Failed", str(exc)
            raise
        except Exception as exc:  # the step's failure, named
            record.status = "Failed"
            record.failure = f"step {name}: {type(exc).__name__}: {exc}"
            raise PipelineError(record.failure) from exc
        finally:
            record.seconds = time.perf_counter() - began

    # --- step kinds ----------------------------------------------------------------------------

    def _processing(self, step: Mapping[str, Any], context: _Context) -> str:
        name = str(step["Name"])
        args = context.resolve(name, step["Arguments"])
        job = _job_name(context, name)
        cluster = args["ProcessingResources"]["ClusterConfig"]
        count = int(cluster["InstanceCount"])
        app = args["AppSpecification"]
        roots = [context.root / name / f"algo-{i + 1}" for i in range(count)]
        outputs = args.get("ProcessingOutputConfig", {})
        role = str(args["RoleArn"])
        with self._acting(role) as (client, env):
            s3 = client("s3")
            inputs = 0
            for spec in args.get("ProcessingInputs", []):
                inputs += self._download_input(name, s3, spec, roots)
            for i, root in enumerate(roots):
                _write_json(
                    root / "config" / "resourceconfig.json",
                    {
                        "current_host": f"algo-{i + 1}",
                        "hosts": [f"algo-{n + 1}" for n in range(count)],
                    },
                )
            command = [*app.get("ContainerEntrypoint", []), *app.get("ContainerArguments", [])]
            self._run_containers(
                name,
                [_mapped(command, root) for root in roots],
                {**env, **{str(k): str(v) for k, v in args.get("Environment", {}).items()}},
                roots,
            )
            uploaded: dict[str, str] = {}
            for output in outputs.get("Outputs", []):
                target = output["S3Output"]
                uploaded[output["OutputName"]] = target["S3Uri"]
                for root in roots:
                    local = _local(target["LocalPath"], root)
                    _upload_tree(s3, local, target["S3Uri"], outputs.get("KmsKeyId"))
        context.run.properties[name] = {
            **args,
            "ProcessingJobName": job,
            "ProcessingJobStatus": "Completed",
        }
        for prop in step.get("PropertyFiles", []):
            path = uploaded.get(prop["OutputName"])
            if path is None:
                raise PipelineError(
                    f"step {name}: property file {prop['PropertyFileName']} names output "
                    f"{prop['OutputName']!r}, which the step does not have"
                )
            # the service reads it from the output's S3 location, as the pipeline's role
            bucket, key = _split(f"{path.rstrip('/')}/{prop['FilePath']}", name)
            with self._acting(context.pipeline_role) as (client, _):
                try:
                    body = client("s3").get_object(Bucket=bucket, Key=key)["Body"].read()
                except Exception as exc:
                    raise PipelineError(
                        f"step {name}: cannot read property file {prop['PropertyFileName']} at "
                        f"s3://{bucket}/{key}: {_reason(exc)}"
                    ) from exc
            context.run.property_files[f"{name}.{prop['PropertyFileName']}"] = json.loads(body)
        targets = ", ".join(uploaded.values()) or "none"
        return f"{count} instance(s), {inputs} input object(s), outputs to {targets}"

    def _training(self, step: Mapping[str, Any], context: _Context) -> str:
        name = str(step["Name"])
        args = context.resolve(name, step["Arguments"])
        job = _job_name(context, name)
        root = context.root / name / "algo-1"
        role = str(args["RoleArn"])
        with self._acting(role) as (client, env):
            s3 = client("s3")
            objects = 0
            for channel in args.get("InputDataConfig", []):
                source = channel["DataSource"]["S3DataSource"]
                local = root / "input" / "data" / channel["ChannelName"]
                objects += _download(s3, source["S3Uri"], [local], sharded=False, step=name)
            config = root / "input" / "config"
            _write_json(config / "hyperparameters.json", args.get("HyperParameters", {}))
            _write_json(
                config / "inputdataconfig.json",
                {
                    c["ChannelName"]: {"TrainingInputMode": c.get("InputMode", "File")}
                    for c in args.get("InputDataConfig", [])
                },
            )
            _write_json(
                config / "resourceconfig.json", {"current_host": "algo-1", "hosts": ["algo-1"]}
            )
            algorithm = args["AlgorithmSpecification"]
            command = [
                *algorithm.get("ContainerEntrypoint", []),
                *algorithm.get("ContainerArguments", []),
            ]
            if not command:
                raise PipelineError(f"step {name}: the training image has no ContainerEntrypoint")
            paths = {
                "SM_INPUT_DIR": str(root / "input"),
                "SM_INPUT_CONFIG_DIR": str(config),
                "SM_MODEL_DIR": str(root / "model"),
                "SM_OUTPUT_DIR": str(root / "output"),
            }
            (root / "model").mkdir(parents=True, exist_ok=True)
            self._run_containers(
                name,
                [_mapped(command, root)],
                {
                    **env,
                    **paths,
                    **{str(k): str(v) for k, v in args.get("Environment", {}).items()},
                },
                [root],
                failure_file=root / "output" / "failure",
            )
            output = args["OutputDataConfig"]
            uri = f"{output['S3OutputPath'].rstrip('/')}/{job}/output/model.tar.gz"
            archive = root / "model.tar.gz"
            with tarfile.open(archive, "w:gz") as tar:
                for path in sorted((root / "model").rglob("*")):
                    tar.add(path, arcname=str(path.relative_to(root / "model")), recursive=False)
            bucket, key = _split(uri, name)
            s3.put_object(
                Bucket=bucket, Key=key, Body=archive.read_bytes(), **_sse(output.get("KmsKeyId"))
            )
        context.run.properties[name] = {
            **args,
            "TrainingJobName": job,
            "TrainingJobStatus": "Completed",
            "ModelArtifacts": {"S3ModelArtifacts": uri},
        }
        return f"{objects} input object(s) -> {uri}"

    def _condition(self, step: Mapping[str, Any], context: _Context) -> str:
        name = str(step["Name"])
        args = step["Arguments"]
        outcome = all(
            _condition(context.resolve(name, c), name) for c in args.get("Conditions", [])
        )
        branch = args.get("IfSteps" if outcome else "ElseSteps", [])
        context.run.properties[name] = {"Outcome": outcome}
        names = ", ".join(str(s["Name"]) for s in branch) or "nothing"
        detail = f"{'true' if outcome else 'false'} -> {names}"
        # the branch's steps are the execution's next steps (their records follow this one)
        context.pending.extend(branch)
        return detail

    def _register(self, step: Mapping[str, Any], context: _Context) -> str:
        name = str(step["Name"])
        args = context.resolve(name, step["Arguments"])
        with self.as_role(context.pipeline_role) as (client, _):
            try:
                arn = str(client("sagemaker").create_model_package(**args)["ModelPackageArn"])
            except Exception as exc:
                raise PipelineError(f"step {name}: CreateModelPackage refused: {exc}") from exc
        context.run.properties[name] = {"ModelPackageArn": arn}
        context.run.model_package_arn = arn
        return f"{arn} ({args.get('ModelApprovalStatus', 'PendingManualApproval')})"

    def _fail(self, step: Mapping[str, Any], context: _Context) -> str:
        name = str(step["Name"])
        message = context.resolve(name, step.get("Arguments", {})).get("ErrorMessage", "")
        raise PipelineError(f"step {name}: {message}")

    # --- running containers, moving data ---------------------------------------------------------

    @contextmanager
    def _acting(self, role: str) -> Iterator[tuple[Callable[[str], Any], dict[str, str]]]:
        """The step's role: its clients and credentials; a failure names the role."""
        with self.as_role(role) as (client, env):
            try:
                yield client, env
            except PipelineError as exc:
                raise PipelineError(f"{exc} (as role {role.rsplit('/', 1)[-1]})") from exc

    def _run_containers(
        self,
        step: str,
        commands: Sequence[Sequence[str]],
        env: Mapping[str, str],
        roots: Sequence[Path],
        *,
        failure_file: Path | None = None,
    ) -> None:
        """Start every instance's container, wait for all; the first failure fails the step."""
        base = {k: v for k, v in os.environ.items() if not k.startswith("AWS_")}
        processes = []
        for command, root in zip(commands, roots, strict=True):
            root.mkdir(parents=True, exist_ok=True)
            environment = {
                **base,
                **env,
                "AWS_ENDPOINT_URL": self.endpoint_url,
                "AWS_DEFAULT_REGION": self.region,
                "AWS_REGION": self.region,
                "AWS_CONFIG_FILE": str(_path_style_config(root)),
            }
            processes.append((_start(command, environment, root, self.python), root))
        failures = []
        for i, (process, root) in enumerate(processes):
            code = process.wait(self.timeout_seconds)
            if code != 0:
                reason = (root / "stderr.log").read_text()[-_TAIL:].strip()
                if failure_file is not None and failure_file.is_file():
                    reason = failure_file.read_text().strip()
                failures.append(f"algo-{i + 1} exited {code}: {reason}")
        if failures:
            raise PipelineError(f"step {step}: {failures[0]}")

    def _download_input(
        self, step: str, s3: Any, spec: Mapping[str, Any], roots: Sequence[Path]
    ) -> int:
        source = spec.get("S3Input")
        if source is None:
            raise PipelineError(f"step {step}: input {spec.get('InputName')} is not an S3Input")
        locals_ = [_local(source["LocalPath"], root) for root in roots]
        sharded = source.get("S3DataDistributionType", "FullyReplicated") == "ShardedByS3Key"
        return _download(s3, source["S3Uri"], locals_, sharded=sharded, step=step)


@dataclass
class _Context:
    run: PipelineRun
    execution: dict[str, str]
    pipeline_role: str
    root: Path
    pending: list[Mapping[str, Any]] = field(default_factory=list)

    def need_step(self, user: str, name: str) -> dict[str, Any]:
        if name not in self.run.properties:
            raise PipelineError(
                f"step {user}: refers to step {name}, which has not run before it "
                f"(ran: {', '.join(self.run.properties) or 'none'})"
            )
        return self.run.properties[name]

    def resolve(self, step: str, value: Any) -> Any:
        """`value` with every expression replaced by what it evaluates to."""
        if isinstance(value, list):
            return [self.resolve(step, v) for v in value]
        if not isinstance(value, dict):
            return value
        if set(value) == {"Get"}:
            return self._get(step, str(value["Get"]))
        if set(value) == {"Std:Join"}:
            join = value["Std:Join"]
            return str(join.get("On", "")).join(
                _text(self.resolve(step, v)) for v in join.get("Values", [])
            )
        if set(value) == {"Std:JsonGet"}:
            spec = value["Std:JsonGet"]
            reference = str(spec["PropertyFile"]["Get"])
            match = re.fullmatch(r"Steps\.([^.]+)\.PropertyFiles\.(.+)", reference)
            if match is None:
                raise PipelineError(f"step {step}: {reference!r} is not a property file reference")
            self.need_step(step, match.group(1))
            data = self.run.property_files.get(f"{match.group(1)}.{match.group(2)}")
            if data is None:
                raise PipelineError(
                    f"step {step}: step {match.group(1)} has no property file {match.group(2)}"
                )
            return _walk(data, str(spec["Path"]), f"step {step}: {reference} {spec['Path']}")
        return {k: self.resolve(step, v) for k, v in value.items()}

    def _get(self, step: str, reference: str) -> Any:
        head, _, rest = reference.partition(".")
        if head == "Parameters":
            if rest not in self.run.parameters:
                raise PipelineError(f"step {step}: no parameter {rest!r}")
            return self.run.parameters[rest]
        if head == "Execution":
            if rest not in self.execution:
                raise PipelineError(f"step {step}: no execution variable {rest!r}")
            return self.execution[rest]
        if head == "Steps":
            name, _, path = rest.partition(".")
            return _walk(self.need_step(step, name), path, f"step {step}: {reference}")
        raise PipelineError(f"step {step}: cannot resolve {reference!r}")


# --- containers ----------------------------------------------------------------------------------

# What the platform image's Python entry points import: loaded once in the fork server, so each
# container pays for its interpreter start-up once per sandbox, not once per instance. Last,
# `mlplat.sandbox.warm`: the boto3 clients the containers make, the models' own modules
# (`start_containers`), and what else each child would redo.
_PRELOAD = [
    "ml.pipeline.__main__",
    "ml.pipeline.curate",
    "ml.pipeline.features",
    "ml.pipeline.train",
    "ml.pipeline.evaluate",
    "ml.pipeline.window",
    "boto3",
    "mlplat.sandbox.pipeline",  # `_run_module`, each container's entry
    "mlplat.sandbox.warm",
]
# What a model's Train step imports from its framework's container (the libraries its estimator
# factory imports when called): seconds of scipy and scikit-learn, or XGBoost, per Train container.
FRAMEWORK_MODULES: dict[str, tuple[str, ...]] = {
    "sklearn": (
        "sklearn.compose",
        "sklearn.ensemble",
        "sklearn.linear_model",
        "sklearn.pipeline",
        "sklearn.preprocessing",
    ),
    "xgboost": ("xgboost",),
}


def start_containers(models: Sequence[str] = ()) -> list[str]:
    """Start the containers' fork server now, with the platform's modules, `models`' runtimes
    (`ml.models.<name>.model`) and their frameworks' libraries imported in it: started before the
    first execution (while the program is realized, on the other core), no container waits for
    it. A fork server already running is kept. Returns the models' modules it imports."""
    import multiprocessing
    from multiprocessing import forkserver

    from ml.models import spec
    from mlplat.sandbox.warm import PRELOAD_ENV

    modules: list[str] = []
    for name in models:
        for module in (f"ml.models.{name}.model", *FRAMEWORK_MODULES.get(spec(name).framework, ())):
            if module not in modules:
                modules.append(module)
    multiprocessing.get_context("forkserver").set_forkserver_preload(_PRELOAD)
    previous = os.environ.get(PRELOAD_ENV)
    os.environ[PRELOAD_ENV] = ",".join(modules)  # the fork server's environment: `warm` reads it
    try:
        forkserver.ensure_running()
    finally:
        if previous is None:
            os.environ.pop(PRELOAD_ENV, None)
        else:
            os.environ[PRELOAD_ENV] = previous
    return modules


class _Container:
    """A running container: `wait(timeout)` its exit code (-9 when it was killed at timeout)."""

    def __init__(self, wait: Callable[[float], int]) -> None:
        self.wait = wait


def _start(command: Sequence[str], env: Mapping[str, str], root: Path, python: str) -> _Container:
    """Start a container's command in its own process: `python3 -m <module> ...` forked from a
    server that has the platform's modules imported (its own environment, working directory
    and output, as a fresh interpreter would have them); anything else as a subprocess."""
    log = root / "stderr.log"
    if len(command) >= 3 and command[0] in ("python", "python3") and command[1] == "-m":
        import multiprocessing

        context = multiprocessing.get_context("forkserver")
        context.set_forkserver_preload(_PRELOAD)
        process = context.Process(
            target=_run_module, args=(command[2], list(command[3:]), dict(env), str(root), str(log))
        )
        process.start()

        def wait_process(timeout: float) -> int:
            process.join(timeout)
            if process.exitcode is None:
                process.kill()
                process.join()
                return -9
            return int(process.exitcode)

        return _Container(wait_process)
    with log.open("w") as out:
        popen = subprocess.Popen(
            [python if command[0] in ("python", "python3") else command[0], *command[1:]],
            cwd=root,
            env=dict(env),
            stdout=out,
            stderr=subprocess.STDOUT,
        )

    def wait_popen(timeout: float) -> int:
        try:
            return popen.wait(timeout=timeout)
        except subprocess.TimeoutExpired:
            popen.kill()
            popen.wait()
            return -9

    return _Container(wait_popen)


def _run_module(module: str, args: list[str], env: dict[str, str], cwd: str, log: str) -> None:
    """In the container's process: `python -m module args` with exactly `env`, in `cwd`, its
    stdout and stderr to `log`."""
    import runpy
    import traceback

    fd = os.open(log, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o644)
    os.dup2(fd, 1)
    os.dup2(fd, 2)
    os.chdir(cwd)
    os.environ.clear()
    os.environ.update(env)
    sys.argv = [module, *args]
    code = 0
    try:
        runpy.run_module(module, run_name="__main__", alter_sys=True)
    except SystemExit as exc:
        code = exc.code if isinstance(exc.code, int) else (0 if exc.code is None else 1)
    except BaseException:
        traceback.print_exc()
        code = 1
    sys.stdout.flush()
    sys.stderr.flush()
    os._exit(code)


# --- helpers -------------------------------------------------------------------------------------


def _walk(data: Any, path: str, what: str) -> Any:
    """A property path (`A.B['key'].C[0]`) into a describe-like dict; a list of named entries is
    indexed by their `OutputName`/`ChannelName`/`Name`."""
    current = data
    for match in _PATH_TOKEN.finditer(path):
        attr, key1, key2, index = match.groups()
        key = attr or key1 or key2
        try:
            if index is not None:
                current = current[int(index)]
            elif isinstance(current, list):
                current = next(
                    item
                    for item in current
                    if key in (item.get("OutputName"), item.get("ChannelName"), item.get("Name"))
                )
            else:
                current = current[key]
        except (KeyError, IndexError, TypeError, StopIteration):
            raise PipelineError(f"{what}: no {key or index!r} there") from None
    return current


def _condition(condition: Mapping[str, Any], step: str) -> bool:
    kind = condition.get("Type")
    if kind == "Not":
        return not _condition(condition["Condition"], step)
    if kind == "Or":
        return any(_condition(c, step) for c in condition["Conditions"])
    left, right = condition.get("LeftValue"), condition.get("RightValue")
    compare: dict[str, Callable[[Any, Any], bool]] = {
        "Equals": lambda a, b: a == b,
        "GreaterThan": lambda a, b: a > b,
        "GreaterThanOrEqualTo": lambda a, b: a >= b,
        "LessThan": lambda a, b: a < b,
        "LessThanOrEqualTo": lambda a, b: a <= b,
        "In": lambda a, b: a in b,
    }
    if kind not in compare:
        raise PipelineError(f"step {step}: condition type {kind!r} is not one SageMaker has")
    return compare[str(kind)](left, right)


def _text(value: Any) -> str:
    if isinstance(value, bool):
        return "true" if value else "false"
    return str(value)


def _job_name(context: _Context, step: str) -> str:
    execution = context.execution["PipelineExecutionId"]
    return f"pipelines-{execution}-{step}"[:63].lower()


def _local(path: str, root: Path) -> Path:
    if not path.startswith(CONTAINER_ROOT):
        raise PipelineError(f"container path {path!r} is not under {CONTAINER_ROOT}")
    return root / path.removeprefix(CONTAINER_ROOT)


def _mapped(command: Sequence[str], root: Path) -> list[str]:
    """Container paths in a command, mapped to the instance's root."""
    return [str(_local(a, root)) if a.startswith(CONTAINER_ROOT) else str(a) for a in command]


def _split(uri: str, step: str) -> tuple[str, str]:
    if not isinstance(uri, str) or not uri.startswith("s3://") or "/" not in uri[5:]:
        raise PipelineError(f"step {step}: {uri!r} is not an s3://bucket/key URI")
    bucket, key = uri[5:].split("/", 1)
    return bucket, key


def _sse(kms_key_id: str | None) -> dict[str, str]:
    return {"ServerSideEncryption": "aws:kms", "SSEKMSKeyId": kms_key_id} if kms_key_id else {}


def _download(s3: Any, uri: str, roots: Sequence[Path], *, sharded: bool, step: str) -> int:
    """Copy the objects under `uri` into `roots` (every root, or dealt out when `sharded`)."""
    bucket, prefix = _split(uri if "/" in uri[5:] else uri + "/", step)
    keys: list[str] = []
    try:
        for page in s3.get_paginator("list_objects_v2").paginate(Bucket=bucket, Prefix=prefix):
            keys += [o["Key"] for o in page.get("Contents", []) if not o["Key"].endswith("/")]
    except Exception as exc:
        raise PipelineError(f"step {step}: cannot list input {uri}: {_reason(exc)}") from exc
    if not keys:
        raise PipelineError(f"step {step}: input {uri} holds no objects")
    base = prefix if prefix.endswith("/") or not keys or keys == [prefix] else prefix + "/"
    for i, key in enumerate(sorted(keys)):
        targets = [roots[i % len(roots)]] if sharded else list(roots)
        try:
            body = s3.get_object(Bucket=bucket, Key=key)["Body"].read()
        except Exception as exc:
            raise PipelineError(
                f"step {step}: cannot read s3://{bucket}/{key}: {_reason(exc)}"
            ) from exc
        # an S3Prefix that is a whole key (a model.tar.gz) lands under its own file name
        whole = key == prefix or not key.startswith(base)
        relative = key.rsplit("/", 1)[-1] if whole else key[len(base) :]
        for root in targets:
            path = root / relative
            path.parent.mkdir(parents=True, exist_ok=True)
            path.write_bytes(body)
    for root in roots:
        root.mkdir(parents=True, exist_ok=True)
    return len(keys)


def _upload_tree(s3: Any, local: Path, uri: str, kms_key_id: str | None) -> None:
    if not local.is_dir():
        return
    bucket, prefix = _split(uri.rstrip("/") + "/", "upload")
    for path in sorted(p for p in local.rglob("*") if p.is_file()):
        key = prefix + str(path.relative_to(local))
        try:
            s3.put_object(Bucket=bucket, Key=key, Body=path.read_bytes(), **_sse(kms_key_id))
        except Exception as exc:
            raise PipelineError(f"cannot upload to s3://{bucket}/{key}: {_reason(exc)}") from exc


def _reason(exc: Exception) -> str:
    error = getattr(exc, "response", {}).get("Error", {})
    return f"{error.get('Code')}: {error.get('Message')}" if error else str(exc)


def _write_json(path: Path, data: Any) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps(data, indent=2))


def _path_style_config(root: Path) -> Path:
    """An AWS config file for the container: path-style S3 (the moto server is an IP address)."""
    path = root / "aws-config"
    path.write_text("[default]\ns3 =\n    addressing_style = path\n")
    return path
