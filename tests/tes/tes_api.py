"""What the TES tests share: the service they talk to, py-tes clients, raw requests for what
py-tes does not send (filters, missing tokens), task builders, and waiting with a deadline."""

from __future__ import annotations

import os
import time
import uuid
from dataclasses import dataclass
from typing import Any, Callable, Iterable, TypeVar

import requests
import tes

from tes_document import BASE_PATH

FINAL_STATES = {"COMPLETE", "EXECUTOR_ERROR", "SYSTEM_ERROR", "CANCELED"}
ACTIVE_STATES = {"QUEUED", "INITIALIZING", "RUNNING", "CANCELING"}

T = TypeVar("T")


@dataclass(frozen=True)
class Service:
    """A running service, as `tests/tes/run.sh pytest` describes it in the environment.

    `SH_TES_URL`: the service's base URL (`http://127.0.0.1:PORT`, without `/ga4gh/tes/v1`);
    `SH_TES_TOKEN` and `SH_TES_OTHER_TOKEN`: tokens of two different users; `SH_TES_IMAGE`: the
    image executors run (`busybox` unless said otherwise; it needs `sh`, `cat`, `wc`, `echo`);
    `SH_TES_MISSING_IMAGE`: an image the node cannot pull (its registry says it has none).
    """

    url: str
    token: str
    other_token: str
    image: str
    missing_image: str

    @classmethod
    def from_environment(cls) -> "Service | None":
        url = os.environ.get("SH_TES_URL")
        if not url:
            return None
        return cls(
            url=url.rstrip("/"),
            token=os.environ["SH_TES_TOKEN"],
            other_token=os.environ["SH_TES_OTHER_TOKEN"],
            image=os.environ.get("SH_TES_IMAGE", "busybox"),
            missing_image=os.environ.get("SH_TES_MISSING_IMAGE", "registry.invalid/unpullable:1"),
        )

    def client(self, token: str | None = "") -> tes.HTTPClient:
        """py-tes as the engines' plugins use it: the base URL and a bearer token (by default
        the first user's; `None` for none)."""
        return tes.HTTPClient(self.url, token=self.token if token == "" else token, timeout=30)

    def request(self, method: str, path: str, token: str | None = "", **kwargs: Any) -> requests.Response:
        """A request under `/ga4gh/tes/v1` (or, with an absolute `path` starting `//`, anywhere):
        `token=None` sends none, the default sends the first user's."""
        headers = dict(kwargs.pop("headers", {}))
        token = self.token if token == "" else token
        if token is not None:
            headers["Authorization"] = f"Bearer {token}"
        target = self.url + path[1:] if path.startswith("//") else self.url + BASE_PATH + path
        return requests.request(method, target, headers=headers, timeout=30, **kwargs)

    def volume(self) -> str:
        """The volume's mount path, from the `file://` location service-info names."""
        storage = self.client().get_service_info().storage or []
        locations = [location for location in storage if location.startswith("file://")]
        assert locations, f"service-info names no file:// storage: {storage}"
        return locations[0][len("file://"):].rstrip("/")


def unique(prefix: str) -> str:
    """A name no other test (or earlier run) uses, so filters see only this test's tasks."""
    return f"{prefix}-{uuid.uuid4().hex[:12]}"


def shell(image: str, script: str, **fields: Any) -> tes.Executor:
    """An executor that runs `script` with `sh -c`, as TES runs every command: as argv."""
    return tes.Executor(image=image, command=["sh", "-c", script], **fields)


def task(name: str, executors: Iterable[tes.Executor], **fields: Any) -> tes.Task:
    return tes.Task(name=name, executors=list(executors), **fields)


def eventually(check: Callable[[], T | None], timeout: float = 120.0, interval: float = 0.5, what: str = "") -> T:
    """Calls `check` until it returns something other than None, or fails at the deadline with
    the last thing it returned or raised."""
    deadline = time.monotonic() + timeout
    last: Any = None
    while True:
        try:
            result = check()
            if result is not None:
                return result
        except AssertionError as error:
            last = error
        if time.monotonic() >= deadline:
            raise AssertionError(f"not within {timeout} s: {what or check}; last: {last}")
        time.sleep(interval)


def wait_final(client: tes.HTTPClient, task_id: str, timeout: float = 180.0, view: str = "FULL") -> tes.Task:
    """The task once it reached a final state, in `view`."""

    def final() -> tes.Task | None:
        current = client.get_task(task_id, view="MINIMAL")
        return client.get_task(task_id, view=view) if current.state in FINAL_STATES else None

    return eventually(final, timeout, what=f"task {task_id} to end")


def wait_state(client: tes.HTTPClient, task_id: str, states: set[str], timeout: float = 120.0) -> str:
    def reached() -> str | None:
        state = client.get_task(task_id, view="MINIMAL").state
        return state if state in states else None

    return eventually(reached, timeout, what=f"task {task_id} to be one of {sorted(states)}")


def ids_of(tasks: Any) -> set[str]:
    """The ids in a list answer (or in its `tasks`)."""
    items = tasks["tasks"] if isinstance(tasks, dict) else tasks
    return {item["id"] for item in items}


def problem(response: requests.Response, status: int) -> dict[str, Any]:
    """The RFC 9457 problem a refused request is answered with, checked for its status."""
    assert response.status_code == status, f"expected {status}, got {response.status_code}: {response.text}"
    assert response.headers.get("content-type", "").startswith("application/problem+json"), response.headers
    body = response.json()
    assert body["status"] == status
    return body


def refused_fields(response: requests.Response) -> set[str]:
    """The fields a 400 names."""
    return {error["field"] for error in problem(response, 400).get("errors", [])}


def list_all(service: Service, token: str | None = "", **params: Any) -> list[dict[str, Any]]:
    """Every task the filters match, following `next_page_token` to the end."""
    tasks: list[dict[str, Any]] = []
    page_token = None
    while True:
        query = dict(params)
        if page_token:
            query["page_token"] = page_token
        response = service.request("GET", "/tasks", token=token, params=query)
        assert response.status_code == 200, response.text
        body = response.json()
        tasks += body["tasks"]
        page_token = body.get("next_page_token")
        if not page_token:
            return tasks
