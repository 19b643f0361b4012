"""Packaging: `model.tar.gz` in the layout the SageMaker scikit-learn container (1.9-0) serves.

```
model.tar.gz
├── model.joblib            the fitted pipeline (model_fn loads it)
├── metrics.json, baseline.json, lineage.json   when present beside the model
└── code/
    ├── inference.py        SAGEMAKER_PROGRAM: re-exports the four handler functions
    └── ml/
        ├── __init__.py     empty: no import of the rest of the package
        ├── contracts.py    file names (standard library only)
        ├── schema.py
        ├── features.py
        └── inference.py
```

The container puts only `code/` on sys.path, and endpoints run with network isolation, so the
handler and the feature code travel with the model; there is deliberately no `requirements.txt`
(the container would try to pip-install it). The archive is deterministic: sorted entries, fixed
mtimes and owners, so the same model gives the same bytes.
"""

from __future__ import annotations

import gzip
import io
import tarfile
from pathlib import Path

from ml.contracts import COMPANION_FILES, MODEL_FILE

PROGRAM = "inference.py"
SHIPPED_MODULES: tuple[str, ...] = ("contracts.py", "schema.py", "features.py", "inference.py")

_ENTRY = '''"""SageMaker entry point (SAGEMAKER_PROGRAM=inference.py); the handler: ml.inference."""

from ml.inference import input_fn, model_fn, output_fn, predict_fn

__all__ = ["input_fn", "model_fn", "output_fn", "predict_fn"]
'''


def code_files() -> dict[str, bytes]:
    """The files of `code/`, by relative path."""
    package = Path(__file__).resolve().parent
    files = {"inference.py": _ENTRY.encode(), "ml/__init__.py": b""}
    for name in SHIPPED_MODULES:
        files[f"ml/{name}"] = (package / name).read_bytes()
    return files


def write_code_dir(dest: Path) -> Path:
    """Write `code/` (handler and feature code) into `dest`."""
    for relative, content in code_files().items():
        path = dest / relative
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_bytes(content)
    return dest


def build_model_tarball(model_dir: Path, output: Path) -> Path:
    """Package `model_dir/model.joblib` (and its JSON companions) with `code/` into `output`.

    `code/` is always written fresh from this package, whatever `model_dir` holds.
    """
    model_path = model_dir / MODEL_FILE
    if not model_path.is_file():
        raise FileNotFoundError(f"no {MODEL_FILE} in {model_dir}: train a model first")
    entries: dict[str, bytes] = {MODEL_FILE: model_path.read_bytes()}
    for name in COMPANION_FILES:
        if (model_dir / name).is_file():
            entries[name] = (model_dir / name).read_bytes()
    for relative, content in code_files().items():
        entries[f"code/{relative}"] = content
    output.parent.mkdir(parents=True, exist_ok=True)
    with (
        output.open("wb") as raw,
        gzip.GzipFile(filename="", fileobj=raw, mode="wb", mtime=0) as gz,
        tarfile.open(fileobj=gz, mode="w", format=tarfile.PAX_FORMAT) as tar,
    ):
        for directory in sorted({str(Path(n).parent) for n in entries} - {"."}):
            tar.addfile(_info(directory, 0, tarfile.DIRTYPE, 0o755))
        for name in sorted(entries):
            data = entries[name]
            tar.addfile(_info(name, len(data), tarfile.REGTYPE, 0o644), io.BytesIO(data))
    return output


def _info(name: str, size: int, kind: bytes, mode: int) -> tarfile.TarInfo:
    info = tarfile.TarInfo(name)
    info.size = size
    info.type = kind
    info.mode = mode
    info.mtime = 0
    info.uid = info.gid = 0
    info.uname = info.gname = ""
    return info
