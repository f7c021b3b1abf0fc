"""The conformance runner's header-adding proxy, against a small upstream of the test's own."""

from __future__ import annotations

import json
import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any, Iterator

import pytest
import requests

import tes_proxy


class Recorder(BaseHTTPRequestHandler):
    """Answers every request with what it received, as JSON, and a status the path asks for."""

    protocol_version = "HTTP/1.1"

    def answer(self) -> None:
        length = int(self.headers.get("Content-Length") or 0)
        body = self.rfile.read(length).decode() if length else ""
        status = 404 if self.path.startswith("/missing") else 200
        content = json.dumps(
            {"method": self.command, "path": self.path, "body": body, "headers": dict(self.headers.items())}
        ).encode()
        self.send_response(status)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(content)))
        self.end_headers()
        self.wfile.write(content)

    do_GET = do_POST = answer

    def log_message(self, format: str, *args: object) -> None:  # noqa: A002
        pass


@pytest.fixture
def proxy() -> Iterator[str]:
    upstream = ThreadingHTTPServer(("127.0.0.1", 0), Recorder)
    threading.Thread(target=upstream.serve_forever, daemon=True).start()
    server = tes_proxy.serve(f"http://127.0.0.1:{upstream.server_address[1]}", "secret-token")
    yield f"http://127.0.0.1:{server.server_address[1]}"
    server.shutdown()
    upstream.shutdown()


def received(response: requests.Response) -> dict[str, Any]:
    return response.json()


def test_the_proxy_adds_the_bearer_token_to_a_request_without_one(proxy: str) -> None:
    # Act
    response = requests.get(f"{proxy}/ga4gh/tes/v1/tasks", timeout=10)

    # Assert
    assert response.status_code == 200
    assert received(response)["headers"]["Authorization"] == "Bearer secret-token"


def test_the_proxy_replaces_a_token_the_client_sent(proxy: str) -> None:
    response = requests.get(f"{proxy}/x", headers={"Authorization": "Bearer other"}, timeout=10)

    assert received(response)["headers"]["Authorization"] == "Bearer secret-token"


def test_the_proxy_forwards_method_path_query_and_body_unchanged(proxy: str) -> None:
    # Arrange
    task = {"executors": [{"image": "alpine", "command": ["echo", "hello"]}]}

    # Act
    response = requests.post(
        f"{proxy}/ga4gh/tes/v1/tasks?view=BASIC&tag_key=a&tag_key=b", json=task, timeout=10
    )

    # Assert
    seen = received(response)
    assert seen["method"] == "POST"
    assert seen["path"] == "/ga4gh/tes/v1/tasks?view=BASIC&tag_key=a&tag_key=b"
    assert json.loads(seen["body"]) == task
    assert seen["headers"]["Content-Type"] == "application/json"


def test_the_proxy_passes_the_upstream_status_through(proxy: str) -> None:
    response = requests.get(f"{proxy}/missing", timeout=10)

    assert response.status_code == 404


def test_the_proxy_answers_502_when_the_upstream_is_gone() -> None:
    # Arrange: a port nothing listens on any more
    idle = ThreadingHTTPServer(("127.0.0.1", 0), Recorder)
    port = idle.server_address[1]
    idle.server_close()
    server = tes_proxy.serve(f"http://127.0.0.1:{port}", "secret-token")

    # Act
    response = requests.get(f"http://127.0.0.1:{server.server_address[1]}/x", timeout=10)

    # Assert
    server.shutdown()
    assert response.status_code == 502


def test_the_proxy_listens_on_loopback_only() -> None:
    with pytest.raises(ValueError):
        tes_proxy.serve("http://127.0.0.1:1", "t", host="0.0.0.0")
