"""Which AWS resource types are taggable: those whose SDK resource class accepts `tags`.

The list is derived from the installed pulumi_aws source (`derive`) and shipped in
`policies/data/taggable_types.txt`, so the policy pack needs no SDK scan at run time. Regenerate it
after upgrading pulumi-aws:

    uv run python -m policies.taggable > policies/data/taggable_types.txt

A test derives the list again and compares.
"""

from __future__ import annotations

import re
from functools import cache
from pathlib import Path

DATA = Path(__file__).resolve().parent / "data" / "taggable_types.txt"

_RESOURCE = re.compile(
    r'@pulumi\.type_token\("(aws:[^"]+)"\)\s*\nclass \w+\(pulumi\.CustomResource\):'
)
_SIGNATURE_END = re.compile(r"\)\s*(->\s*None)?\s*:\s*\n")
_TAGS_ARG = re.compile(r"^\s+tags: pulumi\.Input\[Optional\[Mapping\[", re.MULTILINE)


def sdk_dir() -> Path:
    import importlib.util

    spec = importlib.util.find_spec("pulumi_aws")
    if spec is None or spec.origin is None:
        raise RuntimeError("pulumi_aws is not installed")
    return Path(spec.origin).parent


def derive(root: Path | None = None) -> list[str]:
    """Type tokens of every pulumi_aws resource whose constructor takes `tags` (sorted)."""
    root = root or sdk_dir()
    found: set[str] = set()
    for path in root.rglob("*.py"):
        text = path.read_text(encoding="utf-8")
        if "@pulumi.type_token(" not in text:
            continue
        for match in _RESOURCE.finditer(text):
            start = text.find("def __init__(__self__,", match.end())
            if start < 0:
                continue
            end = _SIGNATURE_END.search(text, start)
            signature = text[start : end.end() if end else len(text)]
            if _TAGS_ARG.search(signature):
                found.add(match.group(1))
    return sorted(found)


@cache
def taggable_types() -> frozenset[str]:
    lines = DATA.read_text(encoding="utf-8").splitlines()
    return frozenset(line.strip() for line in lines if line.strip() and not line.startswith("#"))


def is_taggable(type_: str) -> bool:
    return type_ in taggable_types()


if __name__ == "__main__":
    import importlib.metadata

    print(
        f"# pulumi-aws {importlib.metadata.version('pulumi-aws')}: resources whose args take tags"
    )
    print("\n".join(derive()))
