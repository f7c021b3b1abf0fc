"""Fixtures of the TES suite.

Tests that need a service are skipped when `SH_TES_URL` is not set (`tests/tes/run.sh pytest`
sets it); the checks of the suite's own parts (the document check, the proxy) always run.

Every answer under `/ga4gh/tes/v1` that any test receives, through py-tes or directly, is
checked against the TES 1.1 document on arrival (see `tes_document.py`), so a test fails on the
first answer a client built from the document would refuse, whatever the test itself asserts.
"""

from __future__ import annotations

from typing import Iterator

import pytest
import requests

from tes_api import Service
from tes_document import BASE_PATH, TesDocument, TesDocuments, document_paths


def pytest_configure(config: pytest.Config) -> None:
    config.addinivalue_line(
        "markers",
        "real_node: needs a real kubelet (volumes mounted, images run, container logs and exit codes); "
        "deselected on the simulated node with -m 'not real_node'",
    )


@pytest.fixture(scope="session")
def tes_document() -> TesDocuments:
    paths = document_paths()
    if not paths:
        pytest.skip("no TES 1.1 OpenAPI document is here (openapi/tes.json, or SH_TES_OPENAPI; see tests/tes/README.md)")
    return TesDocuments([TesDocument.load(path) for path in paths])


@pytest.fixture(scope="session")
def service(tes_document: TesDocument) -> Service:
    found = Service.from_environment()
    if found is None:
        pytest.skip("no service to test: SH_TES_URL is not set (tests/tes/run.sh pytest starts from one)")
    return found


@pytest.fixture(autouse=True)
def every_answer_matches_the_document(request: pytest.FixtureRequest, monkeypatch: pytest.MonkeyPatch) -> Iterator[None]:
    """Checks each TES answer as it arrives, for tests that talk to the service."""
    if "service" not in request.fixturenames:
        yield
        return
    document: TesDocuments = request.getfixturevalue("tes_document")
    send = requests.Session.send

    def checked_send(session: requests.Session, prepared: requests.PreparedRequest, **kwargs):  # type: ignore[no-untyped-def]
        response = send(session, prepared, **kwargs)
        path = str(requests.utils.urlparse(prepared.url).path)
        if path.startswith(BASE_PATH + "/") and document.operation(prepared.method or "GET", path):
            body = response.json() if response.status_code == 200 else None
            document.check_answer(prepared.method or "GET", prepared.url or "", response.status_code, body)
        return response

    monkeypatch.setattr(requests.Session, "send", checked_send)
    yield
