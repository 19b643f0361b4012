"""The SageMaker framework container images (scikit-learn, XGBoost), resolved offline.

The image of a region comes from the sagemaker SDK's own image tables
(`sagemaker/core/image_uri_config/<framework>.json`), read as JSON without importing `sagemaker`
(which takes seconds). Used by the endpoint component, the registry and the pipeline's Register
step, so they can never disagree about the serving image. Pure: no pulumi, no network. (Training
runs in the platform image instead: the framework containers' Python is older than the `ml`
code's; `ml.remote_training`. The `training` scope still resolves their training images.)

Tags follow the SDK: `<version>-<processor>-<py>` where the table lists processors and Python
versions (scikit-learn: `1.9-0-cpu-py3`), the bare version where it does not (XGBoost: `3.2-0`,
one image for CPU and GPU instances).
"""

from __future__ import annotations

import importlib.util
import json
from functools import cache
from pathlib import Path
from typing import TYPE_CHECKING, Any, Literal

if TYPE_CHECKING:
    from ml.models import Framework  # a model's container: `ModelSpec.framework`

Scope = Literal["inference", "training"]

SKLEARN_VERSION = "1.9-0"
SKLEARN_REPOSITORY = "sagemaker-scikit-learn"
# Serves the XGBoost 3.2 the spend model trains with (pyproject's `cpu`/`cuda` groups pin 3.2.0):
# a booster saved here loads there.
XGBOOST_VERSION = "3.2-0"
XGBOOST_REPOSITORY = "sagemaker-xgboost"

VERSIONS: dict[Framework, str] = {"sklearn": SKLEARN_VERSION, "xgboost": XGBOOST_VERSION}
REPOSITORIES: dict[Framework, str] = {
    "sklearn": SKLEARN_REPOSITORY,
    "xgboost": XGBOOST_REPOSITORY,
}
_LABELS: dict[Framework, str] = {"sklearn": "scikit-learn", "xgboost": "XGBoost"}


class ImageUriError(ValueError):
    """A framework image of a region cannot be resolved offline."""


@cache
def _table(framework: Framework) -> dict[str, Any]:
    if framework not in VERSIONS:
        raise ImageUriError(f"unknown framework {framework!r}; known: {', '.join(VERSIONS)}")
    spec = importlib.util.find_spec("sagemaker")
    locations = list(spec.submodule_search_locations or []) if spec is not None else []
    name = f"{framework}.json"
    for location in locations:
        path = Path(location) / "core" / "image_uri_config" / name
        if path.is_file():
            table: dict[str, Any] = json.loads(path.read_text())
            return table
    raise ImageUriError(
        f"cannot find sagemaker/core/image_uri_config/{name} in the installed sagemaker SDK "
        f"(looked in {locations or 'no sagemaker package'}); is `sagemaker` installed?"
    )


def dns_suffix_for(region: str) -> str:
    return "amazonaws.com.cn" if region.startswith("cn-") else "amazonaws.com"


def image_uri(
    framework: Framework,
    region: str,
    dns_suffix: str | None = None,
    version: str | None = None,
    scope: Scope = "inference",
) -> str:
    """`<account>.dkr.ecr.<region>.<dns suffix>/<repository>:<tag>` of a framework container."""
    version = version or VERSIONS[framework]
    label = _LABELS[framework]
    versions = _table(framework)[scope]["versions"]
    if version not in versions:
        raise ImageUriError(
            f"{label} container {version!r} is not in the SDK's image table; known: "
            f"{', '.join(sorted(versions))}"
        )
    entry = versions[version]
    registries: dict[str, str] = entry["registries"]
    if region not in registries:
        raise ImageUriError(
            f"no {label} {version} {scope} image in region {region!r}; regions: "
            f"{', '.join(sorted(registries))}"
        )
    tag = [version]
    if processors := entry.get("processors"):
        tag.append("cpu" if "cpu" in processors else processors[0])
    if py_versions := entry.get("py_versions"):
        tag.append("py3" if "py3" in py_versions else py_versions[0])
    repository = entry.get("repository", REPOSITORIES[framework])
    suffix = dns_suffix or dns_suffix_for(region)
    return f"{registries[region]}.dkr.ecr.{region}.{suffix}/{repository}:{'-'.join(tag)}"


def registry_account(framework: Framework, region: str, version: str | None = None) -> str:
    """The account id of the ECR registry a framework's image of `region` lives in."""
    return image_uri(framework, region, version=version).split(".", 1)[0]


def sklearn_image_uri(
    region: str,
    dns_suffix: str | None = None,
    version: str = SKLEARN_VERSION,
    scope: Scope = "inference",
) -> str:
    """`<account>.dkr.ecr.<region>.<dns suffix>/sagemaker-scikit-learn:<version>-cpu-py3`."""
    return image_uri("sklearn", region, dns_suffix, version, scope)


def sklearn_registry_account(region: str, version: str = SKLEARN_VERSION) -> str:
    """The account id of the ECR registry the scikit-learn image of `region` lives in."""
    return registry_account("sklearn", region, version)


def xgboost_image_uri(
    region: str,
    dns_suffix: str | None = None,
    version: str = XGBOOST_VERSION,
    scope: Scope = "inference",
) -> str:
    """`<account>.dkr.ecr.<region>.<dns suffix>/sagemaker-xgboost:<version>`: the same image
    trains on CPU and GPU instances and serves."""
    return image_uri("xgboost", region, dns_suffix, version, scope)


def xgboost_registry_account(region: str, version: str = XGBOOST_VERSION) -> str:
    """The account id of the ECR registry the XGBoost image of `region` lives in."""
    return registry_account("xgboost", region, version)
