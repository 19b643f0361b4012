"""`serve_rps`: requests per second through `mlplat serve` (8 keep-alive clients, 1-record JSON).

The server runs in its own process, exactly as `mlplat serve --model model.tar.gz --port 0` does,
around a real artifact (a small model trained on sample data and packaged by `ml.package`); the
clients are 8 threads here, each on one keep-alive `http.client` connection.
"""

from __future__ import annotations

import http.client
import json
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path

CLIENTS = 8
_LAUNCH = (
    "import typer; from mlplat.cli.commands.serving import register; "
    "app = typer.Typer(); register(app); app()"
)
ROOT = Path(__file__).resolve().parents[2]


def _artifact(workdir: Path) -> Path:
    from ml.models import load
    from ml.package import build_model_tarball
    from ml.sample_data import generate_customers

    churn = load("churn")
    features = churn.features.build_features(generate_customers(2_000, seed=7))
    estimator = churn.make_estimator(churn.hyperparameters()).fit(
        churn.features.feature_matrix(features), features[churn.spec.label].to_numpy()
    )
    churn.save(estimator, workdir)
    return build_model_tarball(churn, workdir, workdir / "out" / "model.tar.gz")


def _record() -> bytes:
    from ml.models import spec
    from ml.sample_data import generate_customers

    row = generate_customers(1, seed=3)[list(spec("churn").inputs)].iloc[0].to_dict()
    return json.dumps({k: (v.item() if hasattr(v, "item") else v) for k, v in row.items()}).encode()


def _client(port: int, n: int, body: bytes, latencies: list[float], errors: list[str]) -> None:
    conn = http.client.HTTPConnection("127.0.0.1", port, timeout=30)
    headers = {"Content-Type": "application/json", "Accept": "application/json"}
    try:
        for _ in range(n):
            start = time.perf_counter()
            conn.request("POST", "/invocations", body=body, headers=headers)
            response = conn.getresponse()
            response.read()
            latencies.append(time.perf_counter() - start)
            if response.status != 200:
                errors.append(str(response.status))
    finally:
        conn.close()


def run(quick: bool = False) -> dict[str, float]:
    total = 800 if quick else 8_000
    per_client = total // CLIENTS
    with tempfile.TemporaryDirectory(prefix="bench-serve-") as tmp:
        artifact = _artifact(Path(tmp))
        body = _record()
        process = subprocess.Popen(
            [sys.executable, "-c", _LAUNCH, "serve", "--model", str(artifact), "--port", "0"],
            cwd=ROOT,
            stdout=subprocess.PIPE,
            text=True,
        )
        try:
            assert process.stdout is not None
            line = process.stdout.readline()
            if not line.startswith("serving "):
                raise RuntimeError(f"mlplat serve did not start: {line!r}")
            port = int(line.rsplit(":", 1)[1])
            _client(port, 50, body, [], [])  # warm-up
            latencies: list[float] = []
            errors: list[str] = []
            threads = [
                threading.Thread(target=_client, args=(port, per_client, body, latencies, errors))
                for _ in range(CLIENTS)
            ]
            start = time.perf_counter()
            for t in threads:
                t.start()
            for t in threads:
                t.join()
            elapsed = time.perf_counter() - start
        finally:
            process.terminate()
            process.wait(timeout=10)
    if errors:
        raise RuntimeError(f"{len(errors)} requests failed (statuses {sorted(set(errors))})")
    latencies.sort()
    return {
        "serve_rps": len(latencies) / elapsed,
        "serve_p50_ms": 1000 * latencies[len(latencies) // 2],
        "serve_p99_ms": 1000 * latencies[int(len(latencies) * 0.99) - 1],
    }


if __name__ == "__main__":
    print(json.dumps(run(quick="--quick" in sys.argv), indent=2))
