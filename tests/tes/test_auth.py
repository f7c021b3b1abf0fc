"""Tokens and owners, as for `/v1`: no token is 401, another user's task is 404."""

from __future__ import annotations

import pytest
import requests

from tes_api import Service, ids_of, problem, shell, task, unique


def test_without_a_token_every_task_operation_is_401(service: Service) -> None:
    # Arrange: py-tes with no token at all
    client = service.client(token=None)
    body = task(unique("no-token"), [shell(service.image, "true")])

    # Act / Assert
    for call in (
        lambda: client.create_task(body),
        lambda: client.list_tasks(),
        lambda: client.get_task("01935f2e-8c4a-7b3d-9e2f-123456789abc"),
        lambda: client.cancel_task("01935f2e-8c4a-7b3d-9e2f-123456789abc"),
    ):
        with pytest.raises(requests.HTTPError) as refused:
            call()
        assert refused.value.response is not None and refused.value.response.status_code == 401


def test_an_unknown_token_is_401_as_a_problem(service: Service) -> None:
    response = service.request("GET", "/tasks", token="sht_not-a-token-of-this-service")

    problem(response, 401)


def test_service_info_needs_no_token(service: Service) -> None:
    response = service.request("GET", "/service-info", token=None)

    assert response.status_code == 200


def test_another_users_task_is_404_to_get_and_to_cancel(service: Service) -> None:
    # Arrange
    task_id = service.client().create_task(task(unique("mine"), [shell(service.image, "sleep 30")]))
    other = service.client(token=service.other_token)

    # Act / Assert
    for call in (lambda: other.get_task(task_id, view="MINIMAL"), lambda: other.cancel_task(task_id)):
        with pytest.raises(requests.HTTPError) as refused:
            call()
        assert refused.value.response is not None and refused.value.response.status_code == 404
    assert service.client().get_task(task_id, view="MINIMAL").state != "CANCELED"


def test_another_users_task_is_not_in_their_list(service: Service) -> None:
    name = unique("not-theirs")
    task_id = service.client().create_task(task(name, [shell(service.image, "true")]))

    theirs = service.request("GET", "/tasks", token=service.other_token, params={"name_prefix": name}).json()
    mine = service.request("GET", "/tasks", params={"name_prefix": name}).json()

    assert ids_of(theirs) == set()
    assert ids_of(mine) == {task_id}
