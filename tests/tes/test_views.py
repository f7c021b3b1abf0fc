"""The three views: MINIMAL (the default), BASIC and FULL, for one task and for lists.

Each answer is also checked against the TES document's view rules by the suite's fixture; these
tests say what each view must contain."""

from __future__ import annotations

import pytest

import tes

from tes_api import Service, problem, refused_fields, shell, task, unique, wait_final


def finished_task(service: Service) -> str:
    """A task with an inline input, an executor that prints it, and an exit code."""
    client = service.client()
    sent = task(
        unique("views"),
        [shell(service.image, "cat /in/greeting.txt; echo oops >&2")],
        inputs=[tes.Input(path="/in/greeting.txt", content="hello\n")],
    )
    task_id = client.create_task(sent)
    wait_final(client, task_id)
    return task_id


@pytest.mark.real_node  # its task reads an inline input, which needs a mounted volume
def test_without_a_view_a_task_is_minimal(service: Service) -> None:
    task_id = finished_task(service)

    response = service.request("GET", f"/tasks/{task_id}")

    assert response.json() == {"id": task_id, "state": "COMPLETE"}


@pytest.mark.real_node  # its task reads an inline input, which needs a mounted volume
def test_basic_has_the_task_and_its_logs_without_contents_and_outputs(service: Service) -> None:
    # Arrange
    task_id = finished_task(service)

    # Act
    basic = service.request("GET", f"/tasks/{task_id}", params={"view": "BASIC"}).json()

    # Assert
    assert basic["inputs"] == [{"path": "/in/greeting.txt", "type": "FILE"}]
    log = basic["logs"][0]
    assert "system_logs" not in log
    assert log["logs"][0]["exit_code"] == 0
    assert "stdout" not in log["logs"][0] and "stderr" not in log["logs"][0]


@pytest.mark.real_node  # its task reads an inline input, which needs a mounted volume
def test_full_has_input_contents_executor_output_and_system_logs(service: Service) -> None:
    # Arrange
    task_id = finished_task(service)

    # Act
    full = service.client().get_task(task_id, view="FULL")

    # Assert
    assert full.inputs[0].content == "hello\n"
    assert "hello" in full.logs[0].logs[0].stdout
    assert full.logs[0].system_logs is not None


@pytest.mark.real_node  # its task reads an inline input, which needs a mounted volume
def test_lists_answer_in_the_view_asked(service: Service) -> None:
    # Arrange
    task_id = finished_task(service)
    name = service.client().get_task(task_id, view="BASIC").name

    # Act
    views = {
        view: service.request("GET", "/tasks", params={"name_prefix": name, "view": view}).json()["tasks"]
        for view in ("MINIMAL", "BASIC", "FULL")
    }

    # Assert
    assert views["MINIMAL"] == [{"id": task_id, "state": "COMPLETE"}]
    assert "content" not in views["BASIC"][0]["inputs"][0]
    assert views["FULL"][0]["inputs"][0]["content"] == "hello\n"


def test_an_unknown_view_is_refused_naming_view(service: Service) -> None:
    response = service.request("GET", "/tasks", params={"view": "EVERYTHING"})

    assert refused_fields(response) == {"view"}


@pytest.mark.real_node  # its task reads an inline input, which needs a mounted volume
def test_an_unknown_view_of_one_task_is_refused_too(service: Service) -> None:
    task_id = finished_task(service)

    response = service.request("GET", f"/tasks/{task_id}", params={"view": "basic"})

    problem(response, 400)
