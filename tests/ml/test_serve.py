"""`mlplat serve`: the SageMaker container contract around a real handler, on 127.0.0.1:0."""

from __future__ import annotations

import functools
import http.client
import io
import json
import os
import socket
import subprocess
import sys
import tarfile
import textwrap
import threading
from collections.abc import Iterator
from pathlib import Path

import joblib
import numpy as np
import pytest
import typer
from sklearn.linear_model import LogisticRegression
from typer.testing import CliRunner

from ml.serve import MAX_BODY_BYTES, ModelServer, ServeError, extract_artifact, serving

ROOT = Path(__file__).resolve().parents[2]

# The fixture handler: two numeric features `a`, `b`; JSON records or header-less CSV rows.
FIXTURE_INFERENCE = textwrap.dedent("""
    import csv
    import io
    import json
    import os

    import joblib
    import numpy as np
    from sagemaker_inference.errors import GenericInferenceToolkitError

    from ml.marker import SOURCE  # the artifact's own `ml` package, not the caller's

    def model_fn(model_dir):
        return {"model": joblib.load(os.path.join(model_dir, "model.joblib")), "source": SOURCE}

    def input_fn(body, content_type):
        if content_type == "application/json":
            try:
                data = json.loads(body)
            except ValueError as err:
                raise GenericInferenceToolkitError(400, f"invalid JSON: {err}")
            records = data if isinstance(data, list) else [data]
            try:
                return np.array([[float(r["a"]), float(r["b"])] for r in records])
            except (KeyError, TypeError, ValueError) as err:
                raise GenericInferenceToolkitError(400, f"each record needs numbers a and b: {err}")
        if content_type == "text/csv":
            rows = [r for r in csv.reader(io.StringIO(body)) if r]
            return np.array([[float(v) for v in r] for r in rows])
        if content_type == "application/x-boom":
            raise RuntimeError("secret internal detail /etc/passwd")
        raise GenericInferenceToolkitError(415, f"unsupported content type {content_type}")

    def predict_fn(data, model):
        return model["model"].predict_proba(data)[:, 1]

    def output_fn(prediction, accept):
        if accept == "text/csv":
            return "".join(f"{float(p)!r}\\n" for p in prediction), "text/csv"
        if accept == "application/json":
            return json.dumps({"predictions": [float(p) for p in prediction]}), "application/json"
        raise GenericInferenceToolkitError(406, f"cannot answer with {accept}")
""")


@functools.cache
def fixture_model() -> LogisticRegression:
    rng = np.random.default_rng(0)
    x = rng.normal(size=(200, 2))
    y = (x[:, 0] + 0.5 * x[:, 1] > 0).astype(int)
    return LogisticRegression().fit(x, y)


def write_artifact(path: Path, inference: str = FIXTURE_INFERENCE, with_model: bool = True) -> Path:
    files = {
        "code/inference.py": inference.encode(),
        "code/ml/__init__.py": b"",
        "code/ml/marker.py": b'SOURCE = "artifact"\n',
    }
    if with_model:
        buffer = io.BytesIO()
        joblib.dump(fixture_model(), buffer)
        files["model.joblib"] = buffer.getvalue()
    with tarfile.open(path, "w:gz") as tar:
        for name, data in files.items():
            info = tarfile.TarInfo(name)
            info.size = len(data)
            tar.addfile(info, io.BytesIO(data))
    return path


@pytest.fixture(scope="module")
def artifact(tmp_path_factory) -> Path:
    return write_artifact(tmp_path_factory.mktemp("artifact") / "model.tar.gz")


@pytest.fixture(scope="module")
def server(artifact) -> Iterator[ModelServer]:
    with serving(artifact, port=0, max_body_bytes=64 * 1024) as running:
        yield running


def call(
    server: ModelServer,
    method: str,
    path: str,
    body: bytes | None = None,
    headers: dict[str, str] | None = None,
) -> tuple[int, str, str]:
    conn = http.client.HTTPConnection("127.0.0.1", server.port, timeout=10)
    try:
        conn.request(method, path, body=body, headers=headers or {})
        response = conn.getresponse()
        return response.status, response.getheader("Content-Type", ""), response.read().decode()
    finally:
        conn.close()


def invoke(server, body: str, content_type="application/json", accept=None):
    headers = {"Content-Type": content_type}
    if accept is not None:
        headers["Accept"] = accept
    return call(server, "POST", "/invocations", body.encode(), headers)


def expected(rows) -> list[float]:
    return [float(p) for p in fixture_model().predict_proba(np.array(rows, dtype=float))[:, 1]]


# --- the contract --------------------------------------------------------------------------------


def test_binds_an_ephemeral_port_on_loopback(server):
    assert server.port > 0
    assert server.url == f"http://127.0.0.1:{server.port}"


def test_ping_answers_200_once_loaded(server):
    status, _, _ = call(server, "GET", "/ping")
    assert status == 200


def test_json_prediction(server):
    status, content_type, body = invoke(
        server, json.dumps([{"a": 1.0, "b": 2.0}, {"a": -3, "b": 0}])
    )
    assert (status, content_type) == (200, "application/json")
    assert json.loads(body)["predictions"] == pytest.approx(expected([[1, 2], [-3, 0]]))


def test_csv_in_csv_out(server):
    status, content_type, body = invoke(server, "1,2\n-3,0\n", "text/csv", accept="text/csv")
    assert (status, content_type) == (200, "text/csv")
    assert [float(v) for v in body.split()] == pytest.approx(expected([[1, 2], [-3, 0]]))


@pytest.mark.parametrize("accept", [None, "*/*"])
def test_missing_or_any_accept_means_json(server, accept):
    status, content_type, body = invoke(server, '{"a": 0.5, "b": 0.5}', accept=accept)
    assert (status, content_type) == (200, "application/json")
    assert json.loads(body)["predictions"] == pytest.approx(expected([[0.5, 0.5]]))


def test_missing_content_type_means_json(server):
    status, _, body = call(server, "POST", "/invocations", b'{"a": 1, "b": 1}')
    assert status == 200
    assert json.loads(body)["predictions"] == pytest.approx(expected([[1, 1]]))


@pytest.mark.parametrize(
    ("body", "content_type", "accept", "status", "message"),
    [
        ("{not json", "application/json", None, 400, "invalid JSON"),
        ('{"a": 1}', "application/json", None, 400, "each record needs numbers a and b"),
        ("a=1", "application/x-www-form-urlencoded", None, 415, "unsupported content type"),
        ('{"a": 1, "b": 2}', "application/json", "image/png", 406, "cannot answer with image/png"),
    ],
)
def test_handler_errors_answer_their_status_and_message(
    server, body, content_type, accept, status, message
):
    got, content, text = invoke(server, body, content_type, accept)
    assert got == status
    assert content.startswith("text/plain")
    assert message in text
    assert "Traceback" not in text


def test_non_utf8_json_is_a_400(server):
    status, _, text = call(
        server, "POST", "/invocations", b"\xff\xfe", {"Content-Type": "application/json"}
    )
    assert status == 400
    assert "not UTF-8" in text


def test_unexpected_exception_is_a_short_500_without_internals(server):
    status, _, text = invoke(server, "x", "application/x-boom")
    assert status == 500
    assert text == "internal error while predicting (RuntimeError); see the server log\n"
    assert call(server, "GET", "/ping")[0] == 200  # still up


def test_body_above_the_limit_is_413_and_the_server_stays_up(server):
    big = json.dumps([{"a": 1, "b": 2}] * 10_000)
    assert len(big) > 64 * 1024
    status, _, text = invoke(server, big)
    assert status == 413
    assert "limit is 65536 bytes" in text
    assert call(server, "GET", "/ping")[0] == 200


def test_a_body_above_the_default_limit_gets_a_413_the_client_reads(artifact):
    """7 MB against the 6 MB limit: the client finishes sending and reads the answer (before,
    the server closed unread and the client saw a broken pipe)."""
    body = b'{"a": 1, "b": 2}' + b" " * (7 * 1024 * 1024)
    with serving(artifact, port=0) as running:
        status, _, text = call(running, "POST", "/invocations", body)
        assert status == 413 and "the limit is 6291456 bytes" in text
        assert call(running, "GET", "/ping")[0] == 200


def test_deeply_nested_json_is_a_400_not_a_500(server, real_artifact):
    deep = "[" * 20_000 + "]" * 20_000  # 40 kB: under the fixture server's 64 kB limit
    status, _, text = invoke(server, deep)  # the fixture handler: json.loads recursion
    assert status == 400 and "nests too deeply" in text
    with serving(real_artifact[0], port=0) as running:  # the platform's own handler says more
        status, _, text = invoke(running, deep)
        assert status == 400 and "nests arrays or objects too deeply" in text


def test_a_burst_of_a_connection_per_request_is_never_reset(server):
    """32 clients, each request on a new connection, all at once: the listen backlog holds them
    (socketserver's default of 5 reset some)."""
    clients, per_client = 32, 25
    statuses: list[int] = []
    errors: list[BaseException] = []
    lock = threading.Lock()
    start = threading.Barrier(clients)

    def client(k: int) -> None:
        start.wait()
        for i in range(per_client):
            try:
                status, _, _ = invoke(server, json.dumps({"a": k, "b": i}))
            except BaseException as exc:  # ConnectionResetError and friends: counted below
                with lock:
                    errors.append(exc)
                continue
            with lock:
                statuses.append(status)

    threads = [threading.Thread(target=client, args=(k,)) for k in range(clients)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(timeout=120)
    assert errors == []
    assert statuses == [200] * (clients * per_client)


def test_default_limit_is_sagemakers_6_mb():
    assert MAX_BODY_BYTES == 6 * 1024 * 1024


def test_request_without_content_length_is_411(server):
    with socket.create_connection(("127.0.0.1", server.port), timeout=10) as sock:
        sock.sendall(
            b"POST /invocations HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked\r\n\r\n0\r\n\r\n"
        )
        head = sock.recv(4096).decode()
    assert head.startswith("HTTP/1.1 411")


@pytest.mark.parametrize(
    ("method", "path", "status"),
    [
        ("GET", "/nope", 404),
        ("POST", "/nope", 404),
        ("GET", "/invocations", 405),
        ("POST", "/ping", 405),
    ],
)
def test_unknown_routes(server, method, path, status):
    assert call(server, method, path, b"{}" if method == "POST" else None)[0] == status


def test_keep_alive_serves_many_requests_on_one_connection(server):
    conn = http.client.HTTPConnection("127.0.0.1", server.port, timeout=10)
    try:
        for i in range(20):
            conn.request(
                "POST",
                "/invocations",
                body=json.dumps({"a": i, "b": 0}),
                headers={"Content-Type": "application/json"},
            )
            response = conn.getresponse()
            assert response.status == 200
            assert json.loads(response.read())["predictions"] == pytest.approx(expected([[i, 0]]))
            assert response.getheader("Connection") != "close"
    finally:
        conn.close()


def test_eight_concurrent_clients_1000_requests(server):
    clients, per_client = 8, 125
    results: list[tuple[int, int, float]] = []
    errors: list[BaseException] = []
    lock = threading.Lock()

    def client(k: int) -> None:
        conn = http.client.HTTPConnection("127.0.0.1", server.port, timeout=30)
        try:
            for i in range(per_client):
                a = (k * per_client + i) / 100
                conn.request(
                    "POST",
                    "/invocations",
                    body=json.dumps({"a": a, "b": -a}),
                    headers={"Content-Type": "application/json"},
                )
                response = conn.getresponse()
                score = json.loads(response.read())["predictions"][0]
                with lock:
                    results.append((k * per_client + i, response.status, score))
        except BaseException as exc:  # surfaced below
            errors.append(exc)
        finally:
            conn.close()

    threads = [threading.Thread(target=client, args=(k,)) for k in range(clients)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(timeout=60)
    assert errors == []
    assert len(results) == 1000
    assert {status for _, status, _ in results} == {200}
    # every answer is the answer to its own request (no mix-up between threads)
    ordered = sorted(results)
    rows = [[n / 100, -n / 100] for n, _, _ in ordered]
    assert [s for _, _, s in ordered] == pytest.approx(expected(rows))
    assert call(server, "GET", "/ping")[0] == 200


# --- loading ----------------------------------------------------------------------------------


def test_handler_imports_the_artifacts_ml_and_restores_ours(artifact):
    import ml as ours

    with serving(artifact, port=0) as running:
        assert running.server.handler.model["source"] == "artifact"
    assert sys.modules["ml"] is ours
    assert "ml.marker" not in sys.modules
    assert "inference" not in sys.modules


def test_extracted_directory_is_served_too(artifact, tmp_path):
    extract_artifact(artifact, tmp_path)
    with serving(tmp_path, port=0) as running:
        assert invoke(running, '{"a": 1, "b": 2}')[0] == 200


def test_missing_model_is_a_clear_error(tmp_path):
    with pytest.raises(ServeError, match="no model at"):
        ModelServer(tmp_path / "nope.tar.gz", port=0)


def test_archive_without_handler_is_refused(tmp_path):
    path = tmp_path / "model.tar.gz"
    with tarfile.open(path, "w:gz") as tar:
        info = tarfile.TarInfo("model.joblib")
        tar.addfile(info, io.BytesIO(b""))
    with pytest.raises(ServeError, match=r"has no code/inference\.py"):
        ModelServer(path, port=0)


def test_not_a_tarball_is_refused(tmp_path):
    path = tmp_path / "model.tar.gz"
    path.write_bytes(b"not a tarball")
    with pytest.raises(ServeError, match="cannot extract"):
        ModelServer(path, port=0)


def test_path_traversal_in_the_archive_is_refused(tmp_path):
    path = tmp_path / "model.tar.gz"
    with tarfile.open(path, "w:gz") as tar:
        info = tarfile.TarInfo("../escaped.py")
        info.size = 1
        tar.addfile(info, io.BytesIO(b"x"))
    with pytest.raises(ServeError, match="cannot extract"):
        ModelServer(path, port=0)
    assert not (tmp_path.parent / "escaped.py").exists()


def test_failing_model_fn_is_a_clear_error(tmp_path):
    path = write_artifact(tmp_path / "model.tar.gz", with_model=False)
    with pytest.raises(ServeError, match=r"model_fn\(.*\) failed: FileNotFoundError"):
        ModelServer(path, port=0)
    assert "inference" not in sys.modules


def test_handler_missing_a_function_is_refused(tmp_path):
    source = FIXTURE_INFERENCE.replace("def output_fn(", "def other_fn(")
    path = write_artifact(tmp_path / "model.tar.gz", inference=source)
    with pytest.raises(ServeError, match="defines no output_fn"):
        ModelServer(path, port=0)


def test_bad_port_and_limit_are_refused(artifact):
    with pytest.raises(ServeError, match="port 70000"):
        ModelServer(artifact, port=70000)
    with pytest.raises(ServeError, match="max_body_bytes 0"):
        ModelServer(artifact, port=0, max_body_bytes=0)


def test_port_in_use_is_a_clear_error(server, artifact):
    with pytest.raises(ServeError, match=f"cannot listen on 127.0.0.1:{server.port}"):
        ModelServer(artifact, port=server.port)


# --- the real package (ml.package + ml.inference) ----------------------------------------


@pytest.fixture(scope="module")
def real_artifact(tmp_path_factory) -> tuple[Path, object]:
    package = pytest.importorskip("ml.package")
    from ml.models import load
    from ml.models.churn.model import make_pipeline
    from ml.sample_data import generate_customers

    churn = load("churn")
    raw = generate_customers(400, seed=1)
    features = churn.features.build_features(raw)
    matrix = churn.features.feature_matrix(features)
    model = make_pipeline().fit(matrix, features["churned"].to_numpy())
    model_dir = tmp_path_factory.mktemp("real-model")
    joblib.dump(model, model_dir / "model.joblib")
    out = package.build_model_tarball(churn, model_dir, model_dir / "out" / "model.tar.gz")
    return out, (model, raw)


def test_real_package_serves_json_and_csv(real_artifact):
    from ml.models import load

    features = load("churn").features
    INPUT_NAMES, records_to_matrix = features.input_names, features.records_to_matrix
    path, (model, raw) = real_artifact
    records = raw[list(INPUT_NAMES)].head(3).to_dict(orient="records")
    want = model.predict_proba(records_to_matrix(records))[:, 1]
    with serving(path, port=0) as running:
        assert call(running, "GET", "/ping")[0] == 200
        status, _, body = invoke(running, json.dumps(records, default=_plain))
        assert status == 200, body
        assert [p["score"] for p in json.loads(body)["predictions"]] == pytest.approx(want)
        csv_body = raw[list(INPUT_NAMES)].head(3).to_csv(index=False, header=False)
        status, content_type, body = invoke(running, csv_body, "text/csv", accept="text/csv")
        assert (status, content_type) == (200, "text/csv"), body
        assert [float(v) for v in body.split()] == pytest.approx(want)
        status, _, body = invoke(running, '{"tenure_months": "many"}')
        assert status == 400
        assert body.strip() and "Traceback" not in body


def _plain(value: object) -> object:
    if isinstance(value, np.generic):
        return value.item()
    raise TypeError(type(value).__name__)


# --- the command -------------------------------------------------------------------------------


def _app() -> typer.Typer:
    from mlplat.cli.commands.serving import register

    app = typer.Typer()
    register(app)
    return app


def test_cli_refuses_a_missing_model(tmp_path):
    result = CliRunner().invoke(_app(), ["serve", "--model", str(tmp_path / "x.tar.gz")])
    assert result.exit_code == 2
    assert "no model at" in result.output


def test_cli_serves_on_port_zero_and_stops_on_sigterm(artifact):
    code = (
        "import typer, sys; from mlplat.cli.commands.serving import register; "
        "app = typer.Typer(); register(app); app()"
    )
    process = subprocess.Popen(
        [sys.executable, "-c", code, "serve", "--model", str(artifact), "--port", "0"],
        cwd=ROOT,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        env={**os.environ, "PYTHONPATH": str(ROOT)},
    )
    try:
        assert process.stdout is not None
        line = process.stdout.readline()
        assert line.startswith(f"serving {artifact} on http://127.0.0.1:"), line
        port = int(line.rsplit(":", 1)[1])
        conn = http.client.HTTPConnection("127.0.0.1", port, timeout=10)
        conn.request("GET", "/ping")
        assert conn.getresponse().status == 200
        conn.close()
    finally:
        process.terminate()
        process.wait(timeout=10)
    assert process.returncode == 0


def test_the_container_environment_names_the_version_in_every_answer(real_artifact):
    from ml.contracts import MODEL_VERSION_ENV
    from ml.models import load

    path, (_, raw) = real_artifact
    names = list(load("churn").features.input_names)
    body = json.dumps(raw[names].head(2).to_dict(orient="records"), default=_plain)
    arn = "arn:aws:sagemaker:us-east-1:123456789012:model-package/churn-models/4"
    assert MODEL_VERSION_ENV not in os.environ
    with serving(path, port=0, environment={MODEL_VERSION_ENV: arn}) as running:
        assert MODEL_VERSION_ENV not in os.environ  # the process's own environment is back
        status, _, answer = invoke(running, body)
        assert status == 200, answer
        assert json.loads(answer)["model_version"] == "churn-models/4"
    with serving(path, port=0) as running:  # `mlplat serve` of a local artifact
        assert json.loads(invoke(running, body)[2])["model_version"] == "unregistered"
