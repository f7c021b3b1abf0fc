"""Create, get, list and cancel: the four task operations, with py-tes as the engines use it."""

from __future__ import annotations

import pytest

import tes

from tes_api import (
    FINAL_STATES,
    Service,
    eventually,
    list_all,
    problem,
    shell,
    task,
    unique,
    wait_final,
    wait_state,
)


def test_creating_a_task_answers_200_with_only_its_id(service: Service) -> None:
    # Arrange
    body = task(unique("create"), [shell(service.image, "true")]).as_json()

    # Act: the document says 200, and the conformance runner checks it
    response = service.request("POST", "/tasks", data=body, headers={"Content-Type": "application/json"})

    # Assert
    assert response.status_code == 200, response.text
    assert set(response.json()) == {"id"}


@pytest.mark.real_node  # the executor's output is its container's log
def test_a_task_runs_to_complete_with_its_exit_code_and_output(service: Service) -> None:
    # Arrange
    client = service.client()
    task_id = client.create_task(task(unique("hello"), [tes.Executor(image=service.image, command=["echo", "hello"])]))

    # Act
    done = wait_final(client, task_id)

    # Assert
    assert done.state == "COMPLETE"
    assert len(done.logs) == 1
    assert [log.exit_code for log in done.logs[0].logs] == [0]
    assert done.logs[0].logs[0].stdout == "hello\n"
    assert done.logs[0].start_time and done.logs[0].end_time
    assert done.creation_time is not None


def test_a_task_reads_back_as_it_was_sent(service: Service) -> None:
    # Arrange
    client = service.client()
    sent = task(
        unique("as-sent"),
        [shell(service.image, "echo $GREETING", env={"GREETING": "hi"}, workdir="/tmp")],
        description="what the engine says about it",
        tags={"WORKFLOW_ID": "wf-1", "PROJECT GROUP": "alice lab"},
        resources=tes.Resources(cpu_cores=1, ram_gb=0.5),
    )

    # Act
    task_id = client.create_task(sent)
    got = client.get_task(task_id, view="BASIC")

    # Assert
    assert got.id == task_id
    assert (got.name, got.description, got.tags) == (sent.name, sent.description, sent.tags)
    assert got.executors == sent.executors
    assert (got.resources.cpu_cores, got.resources.ram_gb) == (1, 0.5)


def test_a_created_task_is_in_the_list(service: Service) -> None:
    # Arrange
    client = service.client()
    name = unique("listed")
    task_id = client.create_task(task(name, [shell(service.image, "true")]))

    # Act
    listed = list_all(service, name_prefix=name)

    # Assert
    assert [item["id"] for item in listed] == [task_id]


def test_cancelling_a_running_task_ends_it_canceled(service: Service) -> None:
    # Arrange
    client = service.client()
    task_id = client.create_task(task(unique("cancel"), [shell(service.image, "sleep 600")]))
    wait_state(client, task_id, {"RUNNING"})

    # Act
    client.cancel_task(task_id)

    # Assert: CANCELING only while the Job is being deleted, then CANCELED for good
    assert client.get_task(task_id, view="MINIMAL").state in {"CANCELING", "CANCELED"}
    wait_state(client, task_id, {"CANCELED"})


def test_cancelling_a_queued_task_cancels_it_before_anything_runs(service: Service) -> None:
    client = service.client()
    task_id = client.create_task(task(unique("cancel-queued"), [shell(service.image, "sleep 600")]))

    client.cancel_task(task_id)

    done = wait_final(client, task_id)
    assert done.state == "CANCELED"


def test_cancelling_twice_or_after_the_end_is_not_an_error(service: Service) -> None:
    # Arrange
    client = service.client()
    task_id = client.create_task(task(unique("cancel-twice"), [shell(service.image, "true")]))
    ended = wait_final(client, task_id)

    # Act
    client.cancel_task(task_id)
    client.cancel_task(task_id)

    # Assert: an ended task stays as it ended
    assert client.get_task(task_id, view="MINIMAL").state == ended.state


def test_a_task_is_also_a_submission_of_the_same_id(service: Service) -> None:
    # Arrange
    client = service.client()
    task_id = client.create_task(task(unique("submission"), [shell(service.image, "true")]))
    wait_final(client, task_id)

    # Act
    submission = service.request("GET", f"//v1/submissions/{task_id}")

    # Assert
    assert submission.status_code == 200, submission.text
    assert submission.json()["id"] == task_id
    assert submission.json()["state"] == "succeeded"


def test_tasks_are_served_only_under_the_tes_prefix_and_never_created_elsewhere(service: Service) -> None:
    # Arrange: the prefixes py-tes re-sends a create to after a 5xx
    name = unique("elsewhere")
    body = task(name, [shell(service.image, "true")]).as_json()
    headers = {"Content-Type": "application/json"}

    # Act
    answers = [
        service.request("POST", path, data=body, headers=headers).status_code
        for path in ("//v1/tasks", "//tasks")
    ]

    # Assert
    assert answers == [404, 404]
    assert list_all(service, name_prefix=name) == []


def test_an_unknown_task_is_404(service: Service) -> None:
    response = service.request("GET", "/tasks/01935f2e-8c4a-7b3d-9e2f-123456789abc")

    problem(response, 404)


def test_every_final_state_stays_final(service: Service) -> None:
    # Arrange
    client = service.client()
    task_id = client.create_task(task(unique("stays"), [shell(service.image, "true")]))
    ended = wait_final(client, task_id).state
    assert ended in FINAL_STATES

    # Act / Assert: a later read never shows another state
    eventually(lambda: True if client.get_task(task_id, view="MINIMAL").state == ended else None, timeout=5)
