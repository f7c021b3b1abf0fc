"""The check every answer goes through: it must refuse what a client built from the TES 1.1
document would refuse, and let through what the document allows (or every other test proves
nothing)."""

from __future__ import annotations

import pytest

from tes_document import TesDocument

TASKS = "http://127.0.0.1:1/ga4gh/tes/v1/tasks"
SERVICE_INFO = {
    "id": "org.example.submission-helper",
    "name": "submission-helper",
    "type": {"group": "org.ga4gh", "artifact": "tes", "version": "1.1.0"},
    "organization": {"name": "Example lab", "url": "https://example.org"},
    "version": "0.1.0",
    "storage": ["file:///ntuples"],
    "tesResources_backend_parameters": [],
}
TASK = {
    "id": "01935f2e-8c4a-7b3d-9e2f-123456789abc",
    "state": "COMPLETE",
    "name": "hello",
    "inputs": [{"path": "/tmp/in.txt", "type": "FILE"}],
    "executors": [{"image": "busybox", "command": ["cat", "/tmp/in.txt"]}],
    "logs": [
        {
            "logs": [{"exit_code": 0, "start_time": "2026-12-03T13:04:05Z", "end_time": "2026-12-03T13:04:06Z"}],
            "outputs": [],
            "start_time": "2026-12-03T13:04:04Z",
        }
    ],
    "creation_time": "2026-12-03T13:04:00Z",
}


def test_a_service_info_with_only_documented_fields_passes(tes_document: TesDocument) -> None:
    tes_document.check_answer("GET", "http://h/ga4gh/tes/v1/service-info", 200, SERVICE_INFO)


def test_a_service_info_with_an_unknown_field_is_refused(tes_document: TesDocument) -> None:
    with pytest.raises(AssertionError, match="uptime"):
        tes_document.check_answer("GET", "http://h/ga4gh/tes/v1/service-info", 200, {**SERVICE_INFO, "uptime": 3})


def test_a_service_info_of_another_artifact_is_refused(tes_document: TesDocument) -> None:
    wrong = {**SERVICE_INFO, "type": {"group": "org.ga4gh", "artifact": "wes", "version": "1.1.0"}}
    with pytest.raises(AssertionError):
        tes_document.check_answer("GET", "http://h/ga4gh/tes/v1/service-info", 200, wrong)


def test_a_basic_task_passes_and_the_same_with_input_content_does_not(tes_document: TesDocument) -> None:
    tes_document.check_answer("GET", f"{TASKS}/x?view=BASIC", 200, TASK)
    with_content = {**TASK, "inputs": [{"path": "/tmp/in.txt", "content": "hi"}]}
    with pytest.raises(AssertionError, match="content"):
        tes_document.check_answer("GET", f"{TASKS}/x?view=BASIC", 200, with_content)
    tes_document.check_answer("GET", f"{TASKS}/x?view=FULL", 200, with_content)


def test_an_executor_log_without_its_exit_code_is_refused(tes_document: TesDocument) -> None:
    broken = {**TASK, "logs": [{"logs": [{"start_time": "2026-12-03T13:04:05Z"}], "outputs": []}]}
    with pytest.raises(AssertionError, match="exit_code"):
        tes_document.check_answer("GET", f"{TASKS}/x?view=FULL", 200, broken)


def test_a_minimal_task_has_exactly_id_and_state(tes_document: TesDocument) -> None:
    tes_document.check_answer("GET", f"{TASKS}/x", 200, {"id": "a", "state": "QUEUED"})
    with pytest.raises(AssertionError):
        tes_document.check_answer("GET", f"{TASKS}/x?view=MINIMAL", 200, {"id": "a", "state": "QUEUED", "name": "n"})
    with pytest.raises(AssertionError):
        tes_document.check_answer("GET", f"{TASKS}/x", 200, {"id": "a", "state": "DONE"})


def test_a_list_is_checked_task_by_task_in_its_view(tes_document: TesDocument) -> None:
    tes_document.check_answer("GET", f"{TASKS}?view=BASIC", 200, {"tasks": [TASK], "next_page_token": "abc"})
    with pytest.raises(AssertionError):
        tes_document.check_answer("GET", f"{TASKS}?view=MINIMAL", 200, {"tasks": [TASK]})


def test_the_create_and_cancel_answers_are_closed_objects(tes_document: TesDocument) -> None:
    tes_document.check_answer("POST", TASKS, 200, {"id": "a"})
    tes_document.check_answer("POST", f"{TASKS}/a:cancel", 200, {})
    with pytest.raises(AssertionError):
        tes_document.check_answer("POST", TASKS, 200, {"id": "a", "state": "QUEUED"})
    with pytest.raises(AssertionError):
        tes_document.check_answer("POST", f"{TASKS}/a:cancel", 200, {"state": "CANCELING"})


def test_paths_outside_the_document_are_not_tes_operations(tes_document: TesDocument) -> None:
    assert tes_document.operation("GET", "/v1/tasks") is None
    assert tes_document.operation("DELETE", "/ga4gh/tes/v1/tasks/a") is None
    assert tes_document.operation("POST", "/ga4gh/tes/v1/tasks/a:cancel") is not None
