"""The SageMaker scikit-learn container images, resolved offline.

The image of a region comes from the sagemaker SDK's own image table
(`sagemaker/core/image_uri_config/sklearn.json`), read as JSON without importing `sagemaker`
(which takes seconds). Used by the endpoint component, the registry and the training jobs, so the
three can never disagree about an image. Pure: no pulumi, no network.
"""

from __future__ import annotations

import importlib.util
import json
from functools import cache
from pathlib import Path
from typing import Any, Literal

SKLEARN_VERSION = "1.9-0"
SKLEARN_REPOSITORY = "sagemaker-scikit-learn"
Scope = Literal["inference", "training"]


class ImageUriError(ValueError):
    """The scikit-learn image of a region cannot be resolved offline."""


@cache
def _sklearn_table() -> dict[str, Any]:
    spec = importlib.util.find_spec("sagemaker")
    locations = list(spec.submodule_search_locations or []) if spec is not None else []
    for location in locations:
        path = Path(location) / "core" / "image_uri_config" / "sklearn.json"
        if path.is_file():
            table: dict[str, Any] = json.loads(path.read_text())
            return table
    raise ImageUriError(
        "cannot find sagemaker/core/image_uri_config/sklearn.json in the installed sagemaker SDK "
        f"(looked in {locations or 'no sagemaker package'}); is `sagemaker` installed?"
    )


def dns_suffix_for(region: str) -> str:
    return "amazonaws.com.cn" if region.startswith("cn-") else "amazonaws.com"


def sklearn_image_uri(
    region: str,
    dns_suffix: str | None = None,
    version: str = SKLEARN_VERSION,
    scope: Scope = "inference",
) -> str:
    """`<account>.dkr.ecr.<region>.<dns suffix>/sagemaker-scikit-learn:<version>-cpu-py3`."""
    versions = _sklearn_table()[scope]["versions"]
    if version not in versions:
        raise ImageUriError(
            f"scikit-learn container {version!r} is not in the SDK's image table; known: "
            f"{', '.join(sorted(versions))}"
        )
    entry = versions[version]
    registries: dict[str, str] = entry["registries"]
    if region not in registries:
        raise ImageUriError(
            f"no scikit-learn {version} {scope} image in region {region!r}; regions: "
            f"{', '.join(sorted(registries))}"
        )
    processor = "cpu" if "cpu" in entry.get("processors", ["cpu"]) else entry["processors"][0]
    py = "py3" if "py3" in entry.get("py_versions", ["py3"]) else entry["py_versions"][0]
    repository = entry.get("repository", SKLEARN_REPOSITORY)
    suffix = dns_suffix or dns_suffix_for(region)
    return f"{registries[region]}.dkr.ecr.{region}.{suffix}/{repository}:{version}-{processor}-{py}"


def sklearn_registry_account(region: str, version: str = SKLEARN_VERSION) -> str:
    """The account id of the ECR registry the scikit-learn image of `region` lives in."""
    return sklearn_image_uri(region, version=version).split(".", 1)[0]
