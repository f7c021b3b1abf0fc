"""Tasks the service refuses: 400, naming the field and why, and nothing stored.

Only `file://` URLs under the volume's mount path (and inline `content`) can be honoured here;
every other scheme is refused rather than accepted and failed later."""

from __future__ import annotations

import json
from typing import Any

import pytest
import requests
import tes

from tes_api import Service, list_all, problem, refused_fields, shell, task, unique, wait_final

HEADERS = {"Content-Type": "application/json"}


def create(service: Service, body: dict[str, Any]) -> tuple[requests.Response, list[dict[str, Any]]]:
    """Sends `body` (named uniquely) and says what was stored under its name."""
    name = unique("refused")
    response = service.request("POST", "/tasks", data=json.dumps({"name": name, **body}), headers=HEADERS)
    return response, list_all(service, name_prefix=name)


def executors(service: Service) -> list[dict]:
    return [shell(service.image, "true").as_dict()]


@pytest.mark.parametrize(
    "url",
    [
        "s3://my-object-store/file1",
        "gs://my-bucket/file2",
        "http://127.0.0.1:9/file",
        "https://example.org/file",
        "ftp://example.org/file",
        "drs://example.org/object",
        "file:///etc/passwd",
        "file://{volume}/../etc/passwd",
        "file://{volume}/a/%2e%2e/%2e%2e/etc/passwd",
        "file://otherhost{volume}/file",
        "relative/path/file",
    ],
)
def test_an_input_url_that_cannot_be_honoured_is_refused_and_nothing_stored(service: Service, url: str) -> None:
    # Arrange
    url = url.format(volume=service.volume())
    body = {"executors": executors(service), "inputs": [{"url": url, "path": "/data/file1", "type": "FILE"}]}

    # Act
    response, stored = create(service, body)

    # Assert
    assert refused_fields(response) == {"inputs[0].url"}
    assert stored == []


@pytest.mark.parametrize("url", ["s3://my-object-store/outfile-1", "file:///tmp/outfile", "file://{volume}/../x"])
def test_an_output_url_that_cannot_be_honoured_is_refused_and_nothing_stored(service: Service, url: str) -> None:
    url = url.format(volume=service.volume())
    body = {"executors": executors(service), "outputs": [{"url": url, "path": "/data/outfile", "type": "FILE"}]}

    response, stored = create(service, body)

    assert refused_fields(response) == {"outputs[0].url"}
    assert stored == []


def test_the_refusal_says_where_files_may_be(service: Service) -> None:
    body = {"executors": executors(service), "inputs": [{"url": "s3://bucket/key", "path": "/data/f"}]}

    response, _ = create(service, body)

    detail = json.dumps(problem(response, 400))
    assert f"file://{service.volume()}" in detail


@pytest.mark.parametrize(
    ("body", "field"),
    [
        ({"executors": []}, "executors"),
        ({"executors": [{"image": "busybox"}]}, "executors[0].command"),
        ({"executors": [{"image": "busybox", "command": []}]}, "executors[0].command"),
        ({"executors": [{"command": ["true"]}]}, "executors[0].image"),
        ({"executors": [{"image": "busybox", "command": ["true"], "workdir": "tmp"}]}, "executors[0].workdir"),
        ({"executors": [{"image": "busybox", "command": ["true"], "stdout": "out.txt"}]}, "executors[0].stdout"),
        ({"executors": [{"image": "busybox", "command": ["true"], "env": {"1BAD": "x"}}]}, "executors[0].env.1BAD"),
        ({"inputs": [{"path": "relative.txt", "content": "x"}]}, "inputs[0].path"),
        ({"inputs": [{"path": "/in/x"}]}, "inputs[0].url"),
        ({"outputs": [{"path": "/out/*.txt", "url": "file://{volume}/x"}]}, "outputs[0].path_prefix"),
        ({"volumes": ["relative"]}, "volumes[0]"),
        ({"resources": {"cpu_cores": 0}}, "resources.cpu_cores"),
        ({"resources": {"ram_gb": -1}}, "resources.ram_gb"),
        ({"unknown_field": 1}, "unknown_field"),
    ],
    ids=lambda value: value if isinstance(value, str) else None,
)
def test_a_task_with_a_bad_field_is_refused_naming_it(service: Service, body: dict, field: str) -> None:
    # Arrange: what the body does not give, a valid task has
    body = json.loads(json.dumps(body).replace("{volume}", service.volume()))
    body.setdefault("executors", executors(service))

    # Act
    response, stored = create(service, body)

    # Assert
    assert field in refused_fields(response)
    assert stored == []


def test_a_task_without_executors_is_refused_naming_them(service: Service) -> None:
    response, stored = create(service, {"inputs": [{"path": "/in/x", "content": "x"}]})

    assert refused_fields(response) == {"executors"}
    assert stored == []


def test_inline_content_over_128_kib_is_refused_naming_it(service: Service) -> None:
    body = {"executors": executors(service), "inputs": [{"path": "/in/big", "content": "x" * (128 * 1024 + 1)}]}

    response, stored = create(service, body)

    assert refused_fields(response) == {"inputs[0].content"}
    assert stored == []


def test_unsupported_backend_parameters_are_refused_when_strict(service: Service) -> None:
    body = {
        "executors": executors(service),
        "resources": {"backend_parameters": {"VmSize": "Standard_D64_v3"}, "backend_parameters_strict": True},
    }

    response, stored = create(service, body)

    assert refused_fields(response) == {"resources.backend_parameters.VmSize"}
    assert stored == []


def test_unsupported_backend_parameters_are_dropped_with_a_system_log_when_not_strict(service: Service) -> None:
    # Arrange
    client = service.client()
    sent = task(
        unique("backend-parameters"),
        [shell(service.image, "true")],
        resources=tes.Resources(backend_parameters={"VmSize": "Standard_D64_v3"}, backend_parameters_strict=False),
    )

    # Act
    full = wait_final(client, client.create_task(sent))

    # Assert: "backends shall not store or return unsupported keys", and say so
    assert full.state == "COMPLETE"
    assert not (full.resources and full.resources.backend_parameters)
    assert any("VmSize" in line for line in full.logs[0].system_logs)


def test_a_cluster_the_service_does_not_have_is_refused_naming_the_backend_parameter(service: Service) -> None:
    body = {"executors": executors(service), "resources": {"backend_parameters": {"cluster": "nowhere"}}}

    response, stored = create(service, body)

    assert refused_fields(response) == {"resources.backend_parameters.cluster"}
    assert stored == []


def test_a_task_pinned_to_a_cluster_runs_there_and_keeps_only_that_parameter(service: Service) -> None:
    # Arrange: the one cluster a service without --cluster has, and a parameter it ignores
    client = service.client()
    parameters = {"cluster": "default", "VmSize": "Standard_D64_v3"}
    sent = task(
        unique("pinned"),
        [shell(service.image, "true")],
        resources=tes.Resources(backend_parameters=parameters, backend_parameters_strict=False),
    )

    # Act
    full = wait_final(client, client.create_task(sent))

    # Assert
    assert full.state == "COMPLETE"
    assert full.resources and full.resources.backend_parameters == {"cluster": "default"}


def test_a_body_that_is_not_json_is_refused(service: Service) -> None:
    response = service.request("POST", "/tasks", data="{not json", headers=HEADERS)

    problem(response, 400)
