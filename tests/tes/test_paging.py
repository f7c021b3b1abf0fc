"""Paging: `page_size` (256 by default, at most 2048) and `page_token`, every task once."""

from __future__ import annotations

from typing import Iterator

import pytest

from tes_api import Service, refused_fields, shell, task, unique

TASKS = 250


@pytest.fixture(scope="module")
def many(service: Service) -> Iterator[tuple[str, set[str]]]:
    """250 tasks of one run, cancelled once listed so they hold up nothing else."""
    client = service.client()
    run = unique("paging")
    created = {
        client.create_task(task(f"{run}-{n:03}", [shell(service.image, "true")], tags={"run": run}))
        for n in range(TASKS)
    }
    yield run, created
    for task_id in created:
        client.cancel_task(task_id)


def pages(service: Service, page_size: int | None, **params: str) -> list[list[str]]:
    """The ids of each page, following next_page_token to the end."""
    found: list[list[str]] = []
    token = None
    while True:
        query = dict(params)
        if page_size is not None:
            query["page_size"] = str(page_size)
        if token:
            query["page_token"] = token
        body = service.request("GET", "/tasks", params=query).json()
        found.append([item["id"] for item in body["tasks"]])
        token = body.get("next_page_token")
        if not token:
            return found
        assert len(found) <= TASKS, "paging does not end"


def test_paging_through_250_tasks_gives_every_id_once(service: Service, many: tuple[str, set[str]]) -> None:
    # Arrange
    run, created = many

    # Act
    found = pages(service, 7, tag_key="run", tag_value=run)

    # Assert
    every = [task_id for page in found for task_id in page]
    assert sorted(every) == sorted(created)
    assert [len(page) for page in found] == [7] * (TASKS // 7) + [TASKS % 7]


def test_the_default_page_is_256_tasks(service: Service, many: tuple[str, set[str]]) -> None:
    run, created = many

    found = pages(service, None, tag_key="run", tag_value=run)

    assert [len(page) for page in found] == [TASKS]


def test_a_page_size_above_2048_answers_at_most_2048(service: Service) -> None:
    response = service.request("GET", "/tasks", params={"page_size": "5000"})

    assert response.status_code == 200
    assert len(response.json()["tasks"]) <= 2048


@pytest.mark.parametrize("page_size", ["0", "-1", "many"])
def test_a_page_size_below_one_or_not_a_number_is_refused(service: Service, page_size: str) -> None:
    response = service.request("GET", "/tasks", params={"page_size": page_size})

    assert refused_fields(response) == {"page_size"}


def test_a_page_token_the_service_did_not_give_is_refused(service: Service) -> None:
    response = service.request("GET", "/tasks", params={"page_token": "not-a-token"})

    assert refused_fields(response) == {"page_token"}


def test_an_unknown_query_parameter_is_refused_naming_it(service: Service) -> None:
    response = service.request("GET", "/tasks", params={"pagesize": "10"})

    assert refused_fields(response) == {"pagesize"}
