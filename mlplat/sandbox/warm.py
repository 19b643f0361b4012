"""Imported by the pipeline containers' fork server (`mlplat.sandbox.pipeline`), last, and nowhere
else: what every container forked from it would otherwise do for itself before its first line.

* botocore parses a service's model (hundreds of kilobytes of JSON for S3 and SageMaker, more
  with the endpoint rules) and its endpoints once per session, and a container makes its clients
  in a fresh one: about 0.2 s each. Here the loader keeps one parsed copy per model and data file
  for the process, and the clients the containers make (S3, SageMaker, CloudWatch) are made once
  (no credentials, no request), so every container finds them parsed. The models are read-only
  data.
* the modules named in `PRELOAD_ENV` (the models' runtimes and their frameworks' libraries: a
  Train step's seconds of scipy, scikit-learn or XGBoost imports) are imported once.
* multiprocessing re-runs the parent's `__main__` in every child it starts (Python 3.11's fork
  server does not keep it, although it means to): a container is `python -m <module>`, run by
  `mlplat.sandbox.pipeline._run_module` (pickled by reference), and never needs the sandbox's
  `__main__`, so the children skip it (0.1-0.3 s each: the CLI's own imports).
* `gc.freeze()` last: the children never scan (and so never copy) the server's objects.

Importing this module never fails the fork server: a problem only leaves a container colder.
"""

from __future__ import annotations

import contextlib
import gc
import importlib
import os
from typing import Any

# The services the pipeline's containers call (`ml.pipeline`: the lake, the registry, metrics).
SERVICES = ("s3", "sagemaker", "cloudwatch")
# Comma-separated modules to import as well (set by `mlplat.sandbox.pipeline.start_containers`).
PRELOAD_ENV = "MLPLAT_SANDBOX_PRELOAD"


def share_service_models() -> None:
    """botocore's `Loader.load_service_model`, and its loads of the top-level data files (the
    endpoints and partitions, the retry rules, the SDK defaults: a JSON parse of about 45 ms for
    every new session), cached per process instead of per session. Both are read-only data; a
    model path (`s3/2006-03-01/service-2`) is left to `load_service_model`, which merges extras
    into what it loads."""
    from botocore.loaders import Loader

    if getattr(Loader, "_mlplat_shared", False):
        return
    load = Loader.load_service_model
    load_data = Loader.load_data_with_path
    shared: dict[tuple[Any, ...], Any] = {}

    def load_service_model(
        self: Loader, service_name: str, type_name: str, api_version: str | None = None
    ) -> Any:
        key = (tuple(self.search_paths), service_name, type_name, api_version)
        if key not in shared:
            shared[key] = load(self, service_name, type_name, api_version)
        return shared[key]

    def load_data_with_path(self: Loader, name: str) -> Any:
        if "/" in name:
            return load_data(self, name)
        key = (tuple(self.search_paths), name)
        if key not in shared:
            shared[key] = load_data(self, name)
        return shared[key]

    Loader.load_service_model = load_service_model  # type: ignore[method-assign]
    Loader.load_data_with_path = load_data_with_path  # type: ignore[method-assign]
    Loader._mlplat_shared = True  # type: ignore[attr-defined]


def make_clients() -> None:
    import boto3

    session = boto3.Session(
        aws_access_key_id="warm", aws_secret_access_key="warm", region_name="us-east-1"
    )
    for service in SERVICES:
        session.client(service, endpoint_url="http://127.0.0.1:1")  # type: ignore[call-overload]


def skip_main_in_children() -> None:
    from multiprocessing import spawn

    spawn._fixup_main_from_path = lambda main_path: None  # type: ignore[attr-defined]
    spawn._fixup_main_from_name = lambda mod_name: None  # type: ignore[attr-defined]


def warm() -> None:
    for step in (share_service_models, make_clients, skip_main_in_children):
        with contextlib.suppress(Exception):  # a cold container is still a correct one
            step()
    for module in filter(None, os.environ.get(PRELOAD_ENV, "").split(",")):
        with contextlib.suppress(Exception):  # the container meets the same error, and says so
            importlib.import_module(module)
    gc.collect()
    gc.freeze()


warm()
