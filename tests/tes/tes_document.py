"""The TES 1.1 OpenAPI document, and a check that an answer is exactly what it allows.

Clients built from the document (py-tes) refuse fields it does not define, so the check is
stricter than the document's own schemas: every object is closed (no property the document does
not name), `allOf` compositions are merged first so closing them does not refuse the other
half's properties, and each view is held to the fields the document gives it (`MINIMAL`: `id`
and `state` only; `BASIC`: no executor `stdout`/`stderr`, input `content` or `system_logs`).

The document refers to the GA4GH service-info schemas by URL; tests send nothing beyond
loopback, so those two schemas are written out here as service-info 1.0.0 defines them.
"""

from __future__ import annotations

import os
import re
from pathlib import Path
from typing import Any
from urllib.parse import parse_qs, urlsplit

import jsonschema
import yaml

BASE_PATH = "/ga4gh/tes/v1"

SERVICE_INFO_URL = (
    "https://raw.githubusercontent.com/ga4gh-discovery/ga4gh-service-info/"
    "v1.0.0/service-info.yaml"
)

# GA4GH service-info 1.0.0: `Service` and `ServiceType`, the two schemas the TES document names.
SERVICE_INFO_SCHEMAS: dict[str, Any] = {
    "ServiceType": {
        "type": "object",
        "required": ["group", "artifact", "version"],
        "properties": {
            "group": {"type": "string"},
            "artifact": {"type": "string"},
            "version": {"type": "string"},
        },
    },
    "Service": {
        "type": "object",
        "required": ["id", "name", "type", "organization", "version"],
        "properties": {
            "id": {"type": "string"},
            "name": {"type": "string"},
            "type": {"$ref": SERVICE_INFO_URL + "#/components/schemas/ServiceType"},
            "description": {"type": "string"},
            "organization": {
                "type": "object",
                "required": ["name", "url"],
                "properties": {
                    "name": {"type": "string"},
                    "url": {"type": "string", "format": "uri"},
                },
            },
            "contactUrl": {"type": "string", "format": "uri"},
            "documentationUrl": {"type": "string", "format": "uri"},
            "createdAt": {"type": "string", "format": "date-time"},
            "updatedAt": {"type": "string", "format": "date-time"},
            "environment": {"type": "string"},
            "version": {"type": "string"},
        },
    },
}

# Fields each view leaves out, by the schema they belong to (the `view` parameter's description).
BASIC_LEAVES_OUT = {
    "tesExecutorLog": {"stdout", "stderr"},
    "tesInput": {"content"},
    "tesTaskLog": {"system_logs"},
}


def document_paths() -> list[Path]:
    """The documents answers are checked against: `SH_TES_OPENAPI` if set; else the service's
    own (`openapi/tes.json`, generated from its types), and the standard's TES 1.1 document too
    where the shared folder beside the repository has it."""
    if os.environ.get("SH_TES_OPENAPI"):
        return [Path(os.environ["SH_TES_OPENAPI"])]
    here = Path(__file__).resolve()
    repository = here.parents[2]
    official = Path("task-execution-schemas") / "openapi" / "task_execution_service.openapi.yaml"
    candidates = [repository / "openapi" / "tes.json"]
    shared = os.environ.get("SH_SHARED_DIR")
    if shared:
        candidates.append(Path(shared) / official)
    candidates.append(repository.parent / "shared" / official)
    found: list[Path] = []
    for path in candidates:
        if path.is_file() and path.resolve() not in [known.resolve() for known in found]:
            found.append(path)
    return found


def document_path() -> Path | None:
    """The first of [`document_paths`], if any."""
    return next(iter(document_paths()), None)


class TesDocuments:
    """Several documents at once: an answer must pass the check of each."""

    def __init__(self, documents: list["TesDocument"]):
        self.documents = documents

    def operation(self, method: str, path: str) -> tuple[str, dict[str, Any]] | None:
        return next(filter(None, (document.operation(method, path) for document in self.documents)), None)

    def check_answer(self, method: str, url: str, status: int, body: Any) -> None:
        for document in self.documents:
            document.check_answer(method, url, status, body)
        # The standard's document pins the service type to TES; the service's own describes the
        # object only, so the suite holds it to the same.
        if status == 200 and urlsplit(url).path.endswith("/service-info"):
            kind = body.get("type") if isinstance(body, dict) else None
            assert isinstance(kind, dict) and (kind.get("group"), kind.get("artifact")) == ("org.ga4gh", "tes"), (
                f"service-info's type is not org.ga4gh/tes: {kind}"
            )

    def check_task(self, task: Any, view: str) -> None:
        for document in self.documents:
            document.check_task(task, view)

    def check_list(self, answer: Any, view: str) -> None:
        for document in self.documents:
            document.check_list(answer, view)

    def validate(self, name: str, body: Any) -> None:
        for document in self.documents:
            document.validate(name, body)


class TesDocument:
    """The document's paths and schemas, closed as described above."""

    def __init__(self, text: str):
        self.raw = yaml.safe_load(text)
        if self.raw.get("info", {}).get("version") != "1.1.0":
            raise ValueError("not the TES 1.1.0 document")
        self.schemas: dict[str, Any] = self.raw["components"]["schemas"]
        self._closed: dict[str, Any] = {}

    @classmethod
    def load(cls, path: Path) -> "TesDocument":
        return cls(path.read_text(encoding="utf-8"))

    # --- schemas -----------------------------------------------------------------------------

    def _target(self, ref: str) -> tuple[str, Any]:
        local = "#/components/schemas/"
        if ref.startswith(local):
            name = ref[len(local):]
            return name, self.schemas[name]
        if ref.startswith(SERVICE_INFO_URL + local):
            name = ref[len(SERVICE_INFO_URL + local):]
            return name, SERVICE_INFO_SCHEMAS[name]
        raise KeyError(f"unknown reference {ref}")

    def closed(self, name: str) -> Any:
        """The named component, every reference inlined, `allOf` merged, every object closed."""
        if name not in self._closed:
            self._closed[name] = self._close(self.schemas[name])
        return self._closed[name]

    def _close(self, schema: Any) -> Any:
        if not isinstance(schema, dict):
            return schema
        if "$ref" in schema:
            _, target = self._target(schema["$ref"])
            return self._close(target)
        if "allOf" in schema:
            merged: dict[str, Any] = {"type": "object", "properties": {}, "required": []}
            for part in schema["allOf"]:
                closed = self._close(part)
                merged["properties"].update(closed.get("properties", {}))
                merged["required"] = sorted(set(merged["required"]) | set(closed.get("required", [])))
                for key, value in closed.items():
                    if key not in ("properties", "required", "additionalProperties", "type"):
                        merged[key] = value
            merged["additionalProperties"] = False
            return merged
        result = {key: value for key, value in schema.items()}
        if "properties" in result:
            result["properties"] = {key: self._close(value) for key, value in result["properties"].items()}
        if "items" in result:
            result["items"] = self._close(result["items"])
        for key in ("oneOf", "anyOf"):
            if key in result:
                result[key] = [self._close(part) for part in result[key]]
        if isinstance(result.get("additionalProperties"), dict):
            result["additionalProperties"] = self._close(result["additionalProperties"])
        if result.get("type") == "object" and "additionalProperties" not in result:
            result["additionalProperties"] = False
        return result

    # --- answers -----------------------------------------------------------------------------

    def operation(self, method: str, path: str) -> tuple[str, dict[str, Any]] | None:
        """The document's path template and operation for a request path under `BASE_PATH`."""
        if not path.startswith(BASE_PATH):
            return None
        rest = path[len(BASE_PATH):]
        for template, operations in self.raw["paths"].items():
            # The service's own document names whole paths; the standard's, paths under its server.
            if template.startswith(BASE_PATH + "/"):
                template = template[len(BASE_PATH):]
            pattern = "^" + re.sub(r"\\\{[^}]+\\\}", "[^/:]+", re.escape(template)) + "$"
            if re.match(pattern, rest) and method.lower() in operations:
                return template, operations[method.lower()]
        return None

    def check_answer(self, method: str, url: str, status: int, body: Any) -> None:
        """Raises `AssertionError` unless a 200 answer is exactly what the document allows.

        Answers other than 200 are not described by the document (it has no error schema); the
        service sends RFC 9457 problems for them, which the tests check where they expect one.
        """
        parts = urlsplit(url)
        found = self.operation(method, parts.path)
        assert found is not None, f"{method} {parts.path} is not an operation of the TES document"
        _, operation = found
        if status != 200:
            return
        view = parse_qs(parts.query).get("view", ["MINIMAL"])[0]
        responses = operation["responses"]
        answer = responses[200] if 200 in responses else responses["200"]
        schema_ref = answer["content"]["application/json"]["schema"]["$ref"]
        name = schema_ref.rsplit("/", 1)[1]
        if name == "tesTask":
            self.check_task(body, view)
        elif name == "tesListTasksResponse":
            self.check_list(body, view)
        else:
            self.validate(name, body)

    def validate(self, name: str, body: Any) -> None:
        errors = sorted(
            jsonschema.Draft4Validator(self.closed(name)).iter_errors(body),
            key=lambda error: list(error.absolute_path),
        )
        assert not errors, f"{name} does not match the TES 1.1 document: " + "; ".join(
            f"{'.'.join(map(str, error.absolute_path)) or '(top)'}: {error.message}" for error in errors
        )

    def check_task(self, task: Any, view: str) -> None:
        if view == "MINIMAL":
            assert isinstance(task, dict) and set(task) == {"id", "state"}, (
                f"a MINIMAL task has exactly id and state, not {sorted(task)}"
            )
            states = self.schemas["tesState"]["enum"]
            assert task["state"] in states, f"state {task['state']!r} is not a TES state"
            assert isinstance(task["id"], str)
            return
        self.validate("tesTask", task)
        if view == "BASIC":
            for path, field in leaves_out_found(task):
                raise AssertionError(f"a BASIC task has {path}.{field}, which only FULL shows")

    def check_list(self, answer: Any, view: str) -> None:
        assert isinstance(answer, dict) and "tasks" in answer, "a task list has tasks"
        assert set(answer) <= {"tasks", "next_page_token"}, f"unknown fields {sorted(set(answer) - {'tasks', 'next_page_token'})}"
        if "next_page_token" in answer:
            assert isinstance(answer["next_page_token"], str) and answer["next_page_token"], "next_page_token is a non-empty string"
        for task in answer["tasks"]:
            self.check_task(task, view)


def leaves_out_found(task: dict[str, Any]) -> list[tuple[str, str]]:
    """The fields present in `task` that the BASIC view leaves out, with where they are."""
    found = []
    for index, item in enumerate(task.get("inputs") or []):
        found += [(f"inputs[{index}]", field) for field in BASIC_LEAVES_OUT["tesInput"] if field in item]
    for index, log in enumerate(task.get("logs") or []):
        found += [(f"logs[{index}]", field) for field in BASIC_LEAVES_OUT["tesTaskLog"] if field in log]
        for position, executor in enumerate(log.get("logs") or []):
            found += [
                (f"logs[{index}].logs[{position}]", field)
                for field in BASIC_LEAVES_OUT["tesExecutorLog"]
                if field in executor
            ]
    return found
