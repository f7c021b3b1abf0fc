"""List filters: `name_prefix`, `state`, and `tag_key`/`tag_value` (repeated, paired in order;
a key without a value matches any value), as the TES document's table says."""

from __future__ import annotations

import pytest

from tes_api import Service, ids_of, list_all, refused_fields, shell, task, unique, wait_final


def test_name_prefix_lists_only_tasks_whose_name_starts_so(service: Service) -> None:
    # Arrange
    client = service.client()
    prefix = unique("prefix")
    matching = {client.create_task(task(f"{prefix}-{n}", [shell(service.image, "true")])) for n in range(3)}
    client.create_task(task(f"other-{prefix}", [shell(service.image, "true")]))

    # Act
    listed = list_all(service, name_prefix=prefix, view="BASIC")

    # Assert
    assert ids_of(listed) == matching
    assert all(item["name"].startswith(prefix) for item in listed)


def test_name_prefix_is_literal_and_case_sensitive(service: Service) -> None:
    # Arrange: characters SQL's LIKE would read as patterns
    client = service.client()
    base = unique("Literal")
    exact = client.create_task(task(f"{base}%_x", [shell(service.image, "true")]))
    client.create_task(task(f"{base}ab", [shell(service.image, "true")]))

    # Act / Assert
    assert ids_of(list_all(service, name_prefix=f"{base}%_")) == {exact}
    assert ids_of(list_all(service, name_prefix=base.lower())) == set()


def test_state_lists_only_tasks_in_that_state(service: Service) -> None:
    # Arrange
    client = service.client()
    prefix = unique("state")
    complete = client.create_task(task(f"{prefix}-ok", [shell(service.image, "true")]))
    failed = client.create_task(task(f"{prefix}-fails", [shell(service.image, "exit 1")]))
    wait_final(client, complete)
    wait_final(client, failed)

    # Act
    listed = {state: ids_of(list_all(service, name_prefix=prefix, state=state)) for state in ("COMPLETE", "EXECUTOR_ERROR", "QUEUED")}

    # Assert
    assert listed == {"COMPLETE": {complete}, "EXECUTOR_ERROR": {failed}, "QUEUED": set()}


def test_an_unknown_state_is_refused_naming_state(service: Service) -> None:
    response = service.request("GET", "/tasks", params={"state": "DONE"})

    assert refused_fields(response) == {"state"}


@pytest.fixture
def tagged(service: Service) -> dict[str, str]:
    """Three tasks with tags of one run: their ids by a short name."""
    client = service.client()
    run = unique("run")
    tags = {
        "both": {"run": run, "foo": "bar", "baz": "bat"},
        "foo-only": {"run": run, "foo": "bar"},
        "foo-other": {"run": run, "foo": "other", "empty": ""},
    }
    return {
        short: client.create_task(task(unique(short), [shell(service.image, "true")], tags=these))
        for short, these in tags.items()
    } | {"run": run}


def tag_query(run: str, keys: list[str], values: list[str]) -> list[tuple[str, str]]:
    return [("tag_key", "run"), *[("tag_key", key) for key in keys], ("tag_value", run), *[("tag_value", value) for value in values]]


@pytest.mark.parametrize(
    ("keys", "values", "expected"),
    [
        (["foo"], ["bar"], {"both", "foo-only"}),
        (["foo"], ["bat"], set()),
        (["foo", "baz"], ["bar", "bat"], {"both"}),
        (["baz", "foo"], ["bat", "bar"], {"both"}),
        (["foo"], [], {"both", "foo-only", "foo-other"}),
        (["foo", "baz"], ["bar"], {"both"}),
        (["foo", "missing"], ["bar"], set()),
        (["empty"], [""], {"foo-other"}),
        (["foo"], [""], {"both", "foo-only", "foo-other"}),
    ],
    ids=[
        "key-and-value",
        "value-mismatch",
        "two-pairs",
        "two-pairs-in-another-order",
        "key-alone-matches-any-value",
        "more-keys-than-values",
        "a-key-no-task-has",
        "empty-value-matches-the-empty-tag",
        "empty-value-matches-any-value",
    ],
)
def test_tags_filter_as_the_document_says(service: Service, tagged: dict[str, str], keys: list[str], values: list[str], expected: set[str]) -> None:
    # Act
    response = service.request("GET", "/tasks", params=tag_query(tagged["run"], keys, values))

    # Assert
    assert response.status_code == 200, response.text
    assert ids_of(response.json()["tasks"]) == {tagged[short] for short in expected}


def test_more_tag_values_than_keys_is_refused_naming_tag_value(service: Service) -> None:
    response = service.request("GET", "/tasks", params=[("tag_key", "a"), ("tag_value", "1"), ("tag_value", "2")])

    assert refused_fields(response) == {"tag_value"}


def test_a_tag_that_is_no_label_is_kept_in_the_task_and_filters_but_is_not_on_the_job(service: Service) -> None:
    # Arrange
    client = service.client()
    tags = {"PROJECT GROUP": "alice lab", "workflow": "wf-1"}
    task_id = client.create_task(task(unique("not-a-label"), [shell(service.image, "true")], tags=tags))

    # Act
    kept = client.get_task(task_id, view="BASIC").tags
    found = service.request("GET", "/tasks", params={"tag_key": "PROJECT GROUP", "tag_value": "alice lab"}).json()
    labels = service.request("GET", f"//v1/submissions/{task_id}").json()["labels"]

    # Assert
    assert kept == tags
    assert task_id in ids_of(found["tasks"])
    assert labels.get("workflow") == "wf-1"
    assert "PROJECT GROUP" not in labels
