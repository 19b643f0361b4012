"""Packaging: `model.tar.gz` in the layout the SageMaker serving container serves.

```
model.tar.gz
├── <model.artifact_file>   the fitted estimator (model.joblib for scikit-learn; model_fn loads it)
├── metrics.json, baseline.json, lineage.json, gate.json   when present beside the model
└── code/
    ├── inference.py        SAGEMAKER_PROGRAM: the handler bound to this model
    └── ml/
        ├── __init__.py     empty: no import of the rest of the package
        ├── contracts.py    file names (standard library only)
        ├── schema.py, features.py, model.py, inference.py
        └── models/
            ├── __init__.py the model contract
            └── <name>/     the model's own package, and nothing of any other model
```

Beside those, `code/ml/` carries every other `ml` module the model's package imports at module
level (found by reading its sources: `import` statements outside functions and outside
`if TYPE_CHECKING:`), and the modules those import in turn.

The container puts only `code/` on sys.path, and endpoints run with network isolation, so the
handler and the feature code travel with the model; there is deliberately no `requirements.txt`
(the container would try to pip-install it). The archive is deterministic: sorted entries, fixed
mtimes and owners, so the same model gives the same bytes.
"""

from __future__ import annotations

import ast
import gzip
import io
import tarfile
from pathlib import Path

from ml.contracts import COMPANION_FILES
from ml.model import Model

PROGRAM = "inference.py"
# The `ml` modules every artifact ships (paths under `ml/`).
SHIPPED_MODULES: tuple[str, ...] = (
    "contracts.py",
    "schema.py",
    "features.py",
    "model.py",
    "inference.py",
    "models/__init__.py",
)

_ENTRY = '''"""SageMaker entry point (SAGEMAKER_PROGRAM=inference.py): the handler (ml.inference) of
model {name!r}."""

from ml.inference import handler

model_fn, input_fn, predict_fn, output_fn = handler({name!r})

__all__ = ["input_fn", "model_fn", "output_fn", "predict_fn"]
'''

_ML = Path(__file__).resolve().parent


def code_files(model: Model) -> dict[str, bytes]:
    """The files of `code/` for `model`, by relative path."""
    files = {PROGRAM: _ENTRY.format(name=model.name).encode(), "ml/__init__.py": b""}
    package = _ML / "models" / model.name
    own = sorted(
        p
        for p in package.rglob("*")
        if p.is_file() and p.suffix == ".py" and "__pycache__" not in p.parts
    )
    modules = {*SHIPPED_MODULES, *_imported_modules(own)}
    for relative in sorted(modules):
        files[f"ml/{relative}"] = (_ML / relative).read_bytes()
    for path in own:
        files[f"ml/{path.relative_to(_ML).as_posix()}"] = path.read_bytes()
    return files


def _imported_modules(sources: list[Path]) -> set[str]:
    """Paths (relative to `ml/`) of the `ml` modules outside `ml/models/` that `sources` import
    at module level, followed transitively."""
    found: set[str] = set()
    todo = list(sources)
    while todo:
        tree = ast.parse(todo.pop().read_text())
        for name in _module_imports(tree.body):
            parts = name.split(".")
            if parts[0] != "ml" or len(parts) < 2 or parts[1] == "models":
                continue
            path = _ML.joinpath(*parts[1:])
            relative = (
                f"{'/'.join(parts[1:])}/__init__.py"
                if path.is_dir()
                else f"{'/'.join(parts[1:])}.py"
            )
            if relative not in found and (_ML / relative).is_file():
                found.add(relative)
                todo.append(_ML / relative)
    return found


def _module_imports(body: list[ast.stmt]) -> list[str]:
    names: list[str] = []
    for node in body:
        if isinstance(node, ast.Import):
            names += [alias.name for alias in node.names]
        elif isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
            names.append(node.module)
        elif isinstance(node, ast.If) and "TYPE_CHECKING" not in ast.unparse(node.test):
            names += _module_imports(node.body) + _module_imports(node.orelse)
        elif isinstance(node, ast.Try):
            names += _module_imports(node.body)
    return names


def write_code_dir(model: Model, dest: Path) -> Path:
    """Write `code/` (the handler bound to `model`, and the code it runs) into `dest`."""
    for relative, content in code_files(model).items():
        path = dest / relative
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_bytes(content)
    return dest


def build_model_tarball(model: Model, model_dir: Path, output: Path) -> Path:
    """Package `model_dir/<model.artifact_file>` (and its JSON companions) with `code/` into
    `output`.

    `code/` is always written fresh from this package, whatever `model_dir` holds.
    """
    model_path = model_dir / model.artifact_file
    if not model_path.is_file():
        raise FileNotFoundError(
            f"no {model.artifact_file} in {model_dir}: train a {model.name} model first"
        )
    entries: dict[str, bytes] = {model.artifact_file: model_path.read_bytes()}
    for name in COMPANION_FILES:
        if (model_dir / name).is_file():
            entries[name] = (model_dir / name).read_bytes()
    for relative, content in code_files(model).items():
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


def model_name_of(path: Path) -> str | None:
    """The model an artifact was built for: the one package under `code/ml/models/` of a
    `model.tar.gz` or its directory, else None (an artifact without `code/`, or not one)."""
    prefix = "code/ml/models/"
    if path.is_dir():
        names = {p.parent.name for p in (path / prefix).glob("*/spec.py")}
    elif path.is_file() and path.name.endswith(".tar.gz"):
        try:
            with tarfile.open(path) as tar:
                names = {
                    n.removeprefix(prefix).split("/")[0]
                    for n in tar.getnames()
                    if n.startswith(prefix) and n.endswith("/spec.py")
                }
        except (tarfile.TarError, OSError):
            return None
    else:
        return None
    return names.pop() if len(names) == 1 else None


def _info(name: str, size: int, kind: bytes, mode: int) -> tarfile.TarInfo:
    info = tarfile.TarInfo(name)
    info.size = size
    info.type = kind
    info.mode = mode
    info.mtime = 0
    info.uid = info.gid = 0
    info.uname = info.gname = ""
    return info
