"""An embedded moto server on 127.0.0.1, on a free port, and boto3 sessions that talk to it."""

from __future__ import annotations

import functools
import json
import logging
import os
import re
import threading
from collections.abc import Iterator, Mapping
from contextlib import contextmanager
from types import TracebackType
from typing import Any

import boto3

# moto accepts any credentials; these make sure nothing real is ever picked up.
FAKE_ACCESS_KEY = "testing"
FAKE_SECRET_KEY = "testing"
# The account moto answers with (unless MOTO_ACCOUNT_ID is set before moto is imported).
MOTO_DEFAULT_ACCOUNT = "123456789012"


class SandboxError(RuntimeError):
    """The sandbox cannot run: a missing dependency, a mismatched account, a dead server."""


class SandboxServer:
    """A moto server in a daemon thread of this process.

    `SandboxServer(region).start()` picks a free port (the OS chooses: port 0) unless one is
    given; `url` is the endpoint every boto3 client of the sandbox uses. Stop it with `stop()` or
    use it as a context manager.

    moto keeps its backends per process, not per server: `start()` resets them, so every sandbox
    starts empty even when an earlier one ran in this process (a server still running in this
    process would lose its resources too: run one sandbox at a time).
    """

    def __init__(self, region: str, port: int = 0, host: str = "127.0.0.1") -> None:
        self.region = region
        self._host = host
        self._port = port
        self._server: Any = None
        self.url = ""
        self._enforcement = threading.Lock()
        self._enforcing = 0  # holders of `iam_enforced`
        self._previous_auth = "inf"

    def start(self) -> SandboxServer:
        try:
            from moto.server import ThreadedMotoServer
        except ImportError as exc:  # flask/werkzeug come with the `moto[server]` extra
            raise SandboxError(
                f"the sandbox needs moto's server (`moto[server]`): {exc}; "
                "install it with `uv sync` (dev group) or `pip install 'moto[server]'`"
            ) from exc
        # The platform launches no EC2 instances: skip loading moto's catalogue of public AMIs
        # (seconds of JSON) unless the caller asked for it.
        os.environ.setdefault("MOTO_EC2_LOAD_DEFAULT_AMIS", "false")
        # werkzeug logs every request to stderr; the sandbox reports what matters itself.
        logging.getLogger("werkzeug").setLevel(logging.ERROR)
        _authorize_with_iam_service_names()
        _list_moto_services_once()
        _deliver_no_access_logs()
        server = ThreadedMotoServer(ip_address=self._host, port=self._port, verbose=False)
        try:
            server.start()
        except OSError as exc:
            raise SandboxError(f"cannot start moto on {self._host}:{self._port}: {exc}") from exc
        host, port = server.get_host_and_port()
        self._server = server
        self.url = f"http://{host}:{port}"
        self._post("/moto-api/reset", "")
        return self

    def stop(self) -> None:
        if self._server is not None:
            self._server.stop()
            self._server = None

    @property
    def running(self) -> bool:
        return self._server is not None

    def __enter__(self) -> SandboxServer:
        return self if self.running else self.start()

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.stop()

    def session(self) -> boto3.Session:
        """A boto3 session with fake credentials in the sandbox's region."""
        return boto3.Session(
            aws_access_key_id=FAKE_ACCESS_KEY,
            aws_secret_access_key=FAKE_SECRET_KEY,
            region_name=self.region,
        )

    def client(self, service: str) -> Any:
        if not self.running:
            raise SandboxError("the sandbox server is not running")
        return self.session().client(service, endpoint_url=self.url)  # type: ignore[call-overload]

    def environment(self) -> dict[str, str]:
        """What a shell needs to reach the sandbox with boto3 or the AWS CLI."""
        return environment_for(self.url, self.region)

    @contextmanager
    def iam_enforced(self) -> Iterator[None]:
        """While inside, moto authenticates every request signed by anyone but the sandbox and
        authorizes it against the caller's IAM policies (moto's `reset-auth` API: no
        unauthenticated actions allowed): IAM users' keys and assumed-role credentials are held
        to their policies. Requests signed with the sandbox's own key (`FAKE_ACCESS_KEY`: the
        deployer, and the AWS services the sandbox stands in for) pass, so steps that run at the
        same time keep working as the sandbox while another acts as a role; a request that is not
        signed at all is refused. Re-entrant and thread-safe: enforcement lasts until the last
        holder leaves, then the previous setting is restored."""
        with self._enforcement:
            if self._enforcing == 0:
                self._previous_auth = self._reset_auth("0")
            self._enforcing += 1
        try:
            yield
        finally:
            with self._enforcement:
                self._enforcing -= 1
                if self._enforcing == 0:
                    self._reset_auth(self._previous_auth)

    def _reset_auth(self, count: str) -> str:
        answer = self._post("/moto-api/reset-auth", count)
        return str(answer["PREVIOUS_INITIAL_NO_AUTH_ACTION_COUNT"])

    def _post(self, path: str, body: str) -> dict[str, Any]:
        """POST to moto's own API (`/moto-api/...`); its JSON answer."""
        import urllib.request

        if not self.running:
            raise SandboxError("the sandbox server is not running")
        request = urllib.request.Request(
            f"{self.url}{path}",
            data=body.encode(),
            method="POST",
            headers={"Content-Type": "text/plain"},
        )
        with urllib.request.urlopen(request, timeout=10) as response:
            answer: dict[str, Any] = json.loads(response.read())
        return answer


# Services whose signing name is not their IAM action prefix (moto authorizes `<signing name>:X`).
_IAM_PREFIXES = {"monitoring": "cloudwatch"}


def _authorize_with_iam_service_names() -> None:
    """Two corrections to moto's IAM authorization, and the sandbox key's exemption, once per
    process:

    * moto names the action after the request's signing name (`monitoring:PutMetricData`),
      which no policy grants (`cloudwatch:PutMetricData`): renamed as IAM does;
    * moto does not know the resource of a non-S3 request and authorizes it against `*`, which
      a statement scoped to ARNs never matches (every scoped grant would be refused): for such a
      request a statement's resources count as matching, so the action alone is authorized (the
      least-privilege step's limits say so)."""
    from moto.iam import access_control

    statement: Any = access_control.IAMPolicyStatement
    element_matches = statement._check_element_matches

    def matches(self: Any, element: Any, value: str) -> bool:
        if element == "Resource" and value == "*":
            return True
        return bool(element_matches(self, element, value))

    base: Any = access_control.IAMRequestBase
    if getattr(base, "_mlplat_iam_names", False):
        return
    original = base.__init__

    def init(self: Any, *args: Any, **kwargs: Any) -> None:
        original(self, *args, **kwargs)
        service, _, action = self._action.partition(":")
        self._action = f"{_IAM_PREFIXES.get(service, service)}:{action}"

    base.__init__ = init
    statement._check_element_matches = matches
    _exempt_the_sandbox_key()
    base._mlplat_iam_names = True


# The access key id of a SigV4-signed request, from its Authorization header (moto authenticates
# nothing else: a presigned URL is refused while it enforces IAM, whoever signed it).
_SIGNED_KEY = re.compile(r"Credential=([^/\s,]+)/")


def _exempt_the_sandbox_key() -> None:
    """While moto enforces IAM, a request signed with the sandbox's own key passes unchecked
    (see `SandboxServer.iam_enforced`); every other request is authenticated and authorized as
    before. Once per process, with the corrections above."""
    from moto.core.authorization import ActionAuthenticatorMixin

    mixin: Any = ActionAuthenticatorMixin
    original = mixin._authenticate_and_authorize_action

    def authenticate(self: Any, iam_request_cls: type, resource: str = "*") -> None:
        signed = _SIGNED_KEY.search(str(self.headers.get("Authorization", "")))
        if signed is not None and signed.group(1) == FAKE_ACCESS_KEY:
            return
        original(self, iam_request_cls, resource)

    mixin._authenticate_and_authorize_action = authenticate


def _list_moto_services_once() -> None:
    """Two directory listings moto's server repeats, done once per process (the directories do
    not change while it runs):

    * it finds the backend of every request by listing moto's package directory
      (`moto.backends.list_of_moto_modules`: an `isdir` per service, about 1 ms) while it holds
      the lock that every request's dispatch waits for: each request now looks the name up;
    * it reads each service's model through a new botocore loader, which lists every service of
      botocore and moto on disk first (about 0.1 s, once per service and model kind): one loader
      now serves them all, listing once."""
    from moto import backends
    from moto.core import loaders, utils

    if getattr(backends, "_mlplat_listed_once", False):
        return
    listed = frozenset(backends.list_of_moto_modules())
    backends.list_of_moto_modules = lambda: listed
    utils.create_loader = functools.cache(loaders.create_loader)  # type: ignore[attr-defined]
    backends._mlplat_listed_once = True  # type: ignore[attr-defined]


def _deliver_no_access_logs() -> None:
    """moto delivers S3 server access logs at once, one object per request into the target
    bucket (random ids drawn a character at a time, a versioned put): about 3,600 puts in a
    sandbox run, for logs nothing in it reads. S3 itself delivers them best effort, hours later;
    the sandbox does not emulate the delivery (the logging configuration itself is realized and
    checked as before). Once per process: moto's S3 backend is the process's."""
    from moto.s3.models import S3Backend

    backend: Any = S3Backend
    if getattr(backend, "_mlplat_no_access_logs", False):
        return
    backend.log_incoming_request = lambda self, request, bucket_name: None
    backend._mlplat_no_access_logs = True


def environment_for(url: str, region: str) -> dict[str, str]:
    return {
        "AWS_ENDPOINT_URL": url,
        "AWS_ACCESS_KEY_ID": FAKE_ACCESS_KEY,
        "AWS_SECRET_ACCESS_KEY": FAKE_SECRET_KEY,
        "AWS_DEFAULT_REGION": region,
    }


@contextmanager
def pointed_at(env: Mapping[str, str]) -> Iterator[None]:
    """Temporarily set the environment so code that makes its own boto3 clients (the `ml/` code,
    which takes no endpoint) talks to the sandbox. Restores the previous values on exit."""
    keys = [*env, "AWS_SESSION_TOKEN", "AWS_SECURITY_TOKEN", "AWS_PROFILE"]
    saved = {k: os.environ.get(k) for k in keys}
    try:
        for k in ("AWS_SESSION_TOKEN", "AWS_SECURITY_TOKEN", "AWS_PROFILE"):
            os.environ.pop(k, None)
        os.environ.update(env)
        yield
    finally:
        for k, v in saved.items():
            if v is None:
                os.environ.pop(k, None)
            else:
                os.environ[k] = v
