"""A Kubernetes API on loopback for tests: TLS with its own CA, the calls the platform makes.

It implements what the cluster gateway uses of the real API: server-side apply (PATCH with
`application/apply-patch+yaml`), GET, DELETE, Job creation, pod listing by label and pod logs, and
answers 401 to any other bearer token than `TOKEN`.
"""

from __future__ import annotations

import base64
import datetime as dt
import ipaddress
import json
import ssl
import threading
import urllib.parse
from collections.abc import Iterator
from contextlib import contextmanager
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import NameOID

TOKEN = "k8s-aws-v1.test-token"


def certificate(directory: Path, name: str) -> tuple[str, str, str]:
    """A self-signed certificate for 127.0.0.1: (cert file, key file, base64 PEM)."""
    key = ec.generate_private_key(ec.SECP256R1())
    subject = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, name)])
    now = dt.datetime.now(dt.UTC)
    cert = (
        x509.CertificateBuilder()
        .subject_name(subject)
        .issuer_name(subject)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - dt.timedelta(minutes=1))
        .not_valid_after(now + dt.timedelta(hours=1))
        .add_extension(
            x509.SubjectAlternativeName([x509.IPAddress(ipaddress.ip_address("127.0.0.1"))]),
            critical=False,
        )
        .add_extension(x509.BasicConstraints(ca=True, path_length=None), critical=True)
        .sign(key, hashes.SHA256())
    )
    pem = cert.public_bytes(serialization.Encoding.PEM)
    cert_file, key_file = directory / f"{name}.crt", directory / f"{name}.key"
    cert_file.write_bytes(pem)
    key_file.write_bytes(
        key.private_bytes(
            serialization.Encoding.PEM,
            serialization.PrivateFormat.PKCS8,
            serialization.NoEncryption(),
        )
    )
    return str(cert_file), str(key_file), base64.b64encode(pem).decode()


class FakeApi:
    """The cluster's state and every request it received."""

    def __init__(self) -> None:
        self.objects: dict[str, dict[str, Any]] = {}
        self.requests: list[dict[str, Any]] = []
        self.refuse: dict[str, tuple[int, str]] = {}  # path -> (status, message)
        self.pods: dict[str, list[dict[str, Any]]] = {}  # job name -> pods
        self.lock = threading.Lock()


def _handler_class(api: FakeApi) -> type[BaseHTTPRequestHandler]:
    class Handler(BaseHTTPRequestHandler):
        def log_message(self, *args: Any) -> None:  # keep test output quiet
            pass

        def _reply(self, status: int, body: Any, text: bool = False) -> None:
            data = (body if text else json.dumps(body)).encode()
            self.send_response(status)
            self.send_header("Content-Type", "text/plain" if text else "application/json")
            self.send_header("Content-Length", str(len(data)))
            self.end_headers()
            self.wfile.write(data)

        def _handle(self) -> None:
            parsed = urllib.parse.urlsplit(self.path)
            query = dict(urllib.parse.parse_qsl(parsed.query))
            length = int(self.headers.get("Content-Length") or 0)
            body = json.loads(self.rfile.read(length)) if length else None
            path = parsed.path
            with api.lock:
                api.requests.append(
                    {
                        "method": self.command,
                        "path": path,
                        "query": query,
                        "body": body,
                        "auth": self.headers.get("Authorization"),
                        "type": self.headers.get("Content-Type"),
                    }
                )
                if path in api.refuse:
                    status, message = api.refuse[path]
                    return self._reply(status, {"kind": "Status", "message": message})
                if self.headers.get("Authorization") != f"Bearer {TOKEN}":
                    return self._reply(401, {"kind": "Status", "message": "Unauthorized"})
                if self.command == "PATCH":
                    api.objects[path] = body
                    return self._reply(200, body)
                if self.command == "DELETE":
                    if api.objects.pop(path, None) is None:
                        return self._reply(404, {"kind": "Status", "message": "not found"})
                    return self._reply(200, {"kind": "Status", "status": "Success"})
                if self.command == "POST" and path.endswith("/jobs"):
                    created = json.loads(json.dumps(body))
                    created["metadata"].update(uid="u-1", creationTimestamp="2026-12-01T10:00:00Z")
                    created["status"] = {"active": 1}
                    api.objects[f"{path}/{body['metadata']['name']}"] = created
                    return self._reply(201, created)
                if self.command == "GET" and path.endswith("/pods"):
                    job = query.get("labelSelector", "").removeprefix("job-name=")
                    return self._reply(200, {"items": api.pods.get(job, [])})
                if self.command == "GET" and path.endswith("/log"):
                    pod = path.split("/")[-2]
                    return self._reply(200, f"log of {pod} ({query['tailLines']} lines)", True)
                if self.command == "GET" and path.endswith("/jobs"):
                    items = [o for p, o in api.objects.items() if "/jobs/" in p]
                    return self._reply(200, {"items": items})
                if self.command == "GET" and path in api.objects:
                    return self._reply(200, api.objects[path])
                return self._reply(404, {"kind": "Status", "message": f"{path} not found"})

        do_GET = do_PATCH = do_DELETE = do_POST = _handle

    return Handler


@contextmanager
def running_api(directory: Path) -> Iterator[tuple[FakeApi, str, str]]:
    """A fake API server on 127.0.0.1: (its state, endpoint URL, base64 PEM of its CA)."""
    cert, key, ca = certificate(directory, "api")
    api = FakeApi()
    httpd = ThreadingHTTPServer(("127.0.0.1", 0), _handler_class(api))
    context = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    context.load_cert_chain(cert, key)
    httpd.socket = context.wrap_socket(httpd.socket, server_side=True)
    thread = threading.Thread(target=httpd.serve_forever, daemon=True)
    thread.start()
    try:
        yield api, f"https://127.0.0.1:{httpd.server_address[1]}", ca
    finally:
        httpd.shutdown()
        httpd.server_close()
