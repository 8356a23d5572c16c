"""A real local Web Push service for tests: an HTTP server on 127.0.0.1, in a thread.

It does what a browser vendor's push service does with what Liaison sends, strictly:
- checks the VAPID authorization (RFC 8292): `Authorization: vapid t=<JWT>, k=<public key>`,
  the JWT signed ES256 with that key, `aud` this service's origin, `exp` in the future and
  within 24 hours, a `sub`;
- decrypts the aes128gcm body (RFC 8291) with the subscription's private key and auth secret
  (`http_ece.decrypt`), each fake subscription having its own P-256 key pair and 16-byte secret;
- records each accepted push (the decrypted JSON, `TTL`, `Urgency`, `Topic`), or the reason it
  refused one;
- can be told to answer an endpoint with 410, 429 + `Retry-After`, 500... for its next pushes.
"""

from __future__ import annotations

import base64
import json
import os
import threading
import time
from collections import deque
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

import http_ece
import jwt
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import ec


def b64url(raw: bytes) -> str:
    return base64.urlsafe_b64encode(raw).decode().rstrip("=")


def unb64url(text: str) -> bytes:
    return base64.urlsafe_b64decode(text + "=" * (-len(text) % 4))


@dataclass
class FakeSubscription:
    name: str
    endpoint: str
    private_key: ec.EllipticCurvePrivateKey
    auth_secret: bytes

    def to_json(self) -> dict[str, Any]:
        """What the browser's `PushSubscription.toJSON()` gives."""
        public = self.private_key.public_key().public_bytes(serialization.Encoding.X962,
                                                            serialization.PublicFormat.UncompressedPoint)
        return {"endpoint": self.endpoint, "expirationTime": None,
                "keys": {"p256dh": b64url(public), "auth": b64url(self.auth_secret)}}


@dataclass
class Push:
    name: str
    payload: dict[str, Any]
    ttl: str | None
    urgency: str | None
    topic: str | None
    vapid_key: str
    at: float


@dataclass
class Answer:
    status: int
    retry_after: str | None = None


@dataclass
class PushService:
    server: ThreadingHTTPServer
    thread: threading.Thread
    subscriptions: dict[str, FakeSubscription] = field(default_factory=dict)
    pushes: list[Push] = field(default_factory=list)
    refused: list[str] = field(default_factory=list)
    answered: list[tuple[str, int]] = field(default_factory=list)
    scripted: dict[str, deque[Answer]] = field(default_factory=dict)
    lock: threading.Lock = field(default_factory=threading.Lock)
    delay: float = 0.0  # seconds each push takes to be accepted (a busy push service)
    answer_delay: float = 0.0  # seconds between accepting a push and answering (an answer on its way)

    @property
    def origin(self) -> str:
        host, port = self.server.server_address[:2]
        return f"http://{host!s}:{port}"

    def subscription(self, name: str) -> FakeSubscription:
        sub = FakeSubscription(name, f"{self.origin}/push/{name}", ec.generate_private_key(ec.SECP256R1()),
                               os.urandom(16))
        with self.lock:
            self.subscriptions[name] = sub
        return sub

    def answer(self, name: str, status: int, retry_after: str | None = None, times: int = 1) -> None:
        """The next `times` pushes to `name` get this answer (and are not recorded)."""
        with self.lock:
            self.scripted.setdefault(name, deque()).extend([Answer(status, retry_after)] * times)

    def to(self, name: str) -> list[Push]:
        with self.lock:
            return [p for p in self.pushes if p.name == name]

    def statuses(self, name: str) -> list[int]:
        with self.lock:
            return [status for n, status in self.answered if n == name]

    def stop(self) -> None:
        self.server.shutdown()
        self.server.server_close()
        self.thread.join(timeout=5)

    # -- one request -------------------------------------------------------------------------

    def handle(self, path: str, headers: Any, body: bytes) -> tuple[int, dict[str, str]]:
        name = path.rsplit("/", 1)[-1]
        if self.delay:
            time.sleep(self.delay)
        with self.lock:
            sub = self.subscriptions.get(name)
            queued = self.scripted.get(name)
            scripted = queued.popleft() if queued else None
        if sub is None or not path.startswith("/push/"):
            return self._answer(name, 404, {})
        try:
            vapid_key = self._check_vapid(headers.get("Authorization", ""))
            if headers.get("Content-Encoding") != "aes128gcm":
                raise ValueError("Content-Encoding must be aes128gcm")
            plain = http_ece.decrypt(body, private_key=sub.private_key, auth_secret=sub.auth_secret,
                                     version="aes128gcm")
            payload = json.loads(plain)
        except Exception as exc:  # a push a real service would refuse
            with self.lock:
                self.refused.append(f"{name}: {type(exc).__name__}: {exc}")
            return self._answer(name, 400, {})
        if scripted is not None:
            extra = {"Retry-After": scripted.retry_after} if scripted.retry_after is not None else {}
            return self._answer(name, scripted.status, extra)
        with self.lock:
            self.pushes.append(Push(name, payload, headers.get("TTL"), headers.get("Urgency"),
                                    headers.get("Topic"), vapid_key, time.time()))
        if self.answer_delay:
            time.sleep(self.answer_delay)
        return self._answer(name, 201, {"Location": f"{self.origin}/message/{len(self.pushes)}"})

    def _answer(self, name: str, status: int, extra: dict[str, str]) -> tuple[int, dict[str, str]]:
        with self.lock:
            self.answered.append((name, status))
        return status, extra

    def _check_vapid(self, authorization: str) -> str:
        scheme, _, rest = authorization.partition(" ")
        if scheme != "vapid":
            raise ValueError(f"Authorization scheme {scheme!r}, not vapid")
        params = dict(part.strip().split("=", 1) for part in rest.split(","))
        token, key = params["t"], params["k"]
        public = ec.EllipticCurvePublicKey.from_encoded_point(ec.SECP256R1(), unb64url(key))
        claims = jwt.decode(token, public, algorithms=["ES256"], audience=self.origin,
                            options={"require": ["exp", "aud", "sub"]})
        if claims["exp"] > time.time() + 24 * 3600:
            raise ValueError("exp more than 24 hours ahead")
        return key


def start_push_service() -> PushService:
    holder: dict[str, PushService] = {}

    class Handler(BaseHTTPRequestHandler):
        protocol_version = "HTTP/1.1"  # keep-alive, as push services do

        def do_POST(self) -> None:
            length = int(self.headers.get("Content-Length", "0"))
            body = self.rfile.read(length)
            status, extra = holder["service"].handle(self.path, self.headers, body)
            self.send_response(status)
            for name, value in extra.items():
                self.send_header(name, value)
            self.send_header("Content-Length", "0")
            self.end_headers()

        def log_message(self, format: str, *args: Any) -> None:
            pass

    class Server(ThreadingHTTPServer):
        request_queue_size = 256  # a sender's whole pool of connections at once

    server = Server(("127.0.0.1", 0), Handler)
    server.daemon_threads = True
    thread = threading.Thread(target=server.serve_forever, name="push-service", daemon=True)
    service = PushService(server, thread)
    holder["service"] = service
    thread.start()
    return service
