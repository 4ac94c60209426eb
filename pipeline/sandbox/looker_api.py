"""A Looker-API-compatible (4.0) server on 127.0.0.1 for the real looker-sdk."""

import json
import re
from collections.abc import Callable
from typing import Any
from urllib.parse import parse_qs

from pipeline.sandbox import looker_project, looker_state, server
from pipeline.sandbox.looker_state import clear_faults, set_faults
from pipeline.sandbox.server import Answer, Route, SandboxHandler, route, serve

__all__ = ["clear_faults", "requests_seen", "sandbox_url", "set_faults"]

API = "/api/4.0"
DOCS = "https://cloud.google.com/looker/docs/r/api/4.0"

Reply = tuple[int, Any]  # status and JSON payload of one endpoint


def sandbox_url() -> str:
    """Base URL of this process's Looker sandbox (started on first use); looker-sdk adds /api/4.0."""
    looker_state.ensure_state()
    return serve("looker", LookerHandler)


def requests_seen() -> list[dict[str, Any]]:
    """Every request any process's Looker sandbox answered, in order: method, path, query, status, pid."""
    return server.requests_seen("looker")


def error(message: str) -> dict[str, str]:
    return {"message": message, "documentation_url": DOCS}


def login(form: dict[str, list[str]]) -> Reply:
    if looker_state.take_fault("login_5xx"):
        return 503, error("Service Unavailable")
    client_id, client_secret = (form.get(k, [""])[0] for k in ("client_id", "client_secret"))
    if not (client_id and client_secret):
        return 401, error("Requires client_id and client_secret.")
    token = looker_state.issue_token()
    return 200, {
        "access_token": token,
        "token_type": "Bearer",
        "expires_in": looker_state.TOKEN_SECONDS,
    }


def update_datagroup(body, datagroup_id: str) -> Reply:
    if looker_state.take_fault("refresh_5xx"):
        return 503, error("Service Unavailable")
    return 200, looker_state.update_datagroup(datagroup_id, body or {})


def start_pdt(body, model: str, view: str) -> Reply:
    if looker_state.take_fault("refresh_5xx"):
        return 503, error("Service Unavailable")
    return 200, looker_state.start_build(model, view)


def get_lookml_model(body, name: str) -> Reply:
    project = looker_project.project()
    if name not in project.models:
        raise looker_state.NotFound(f"Model '{name}' not found")
    return 200, looker_project.lookml_model(project.models[name], project.name)


def validate(body, project_id: str) -> Reply:
    """POST: a fresh ProjectValidation; the validation_errors fault decides what it finds."""
    project = looker_project.project()
    if project_id != project.name:
        raise looker_state.NotFound(f"Project '{project_id}' not found")
    return 200, looker_project.validation(project, looker_state.faults()["validation_errors"])


def validation_results(body, project_id: str) -> Reply:
    """GET: the cached ProjectValidationCache, which adds `stale`."""
    status, result = validate(body, project_id)
    return status, {**result, "stale": False}


def lookml_models(body) -> Reply:
    project = looker_project.project()
    return 200, [looker_project.lookml_model(m, project.name) for m in project.models.values()]


def get_datagroup(body, datagroup_id: str) -> Reply:
    return 200, looker_state.datagroup(datagroup_id)


def pdt_status(body, materialization_id: str) -> Reply:
    return 200, looker_state.check_build(materialization_id)


ROUTES: list[Route] = [
    (method, re.compile(API + path), handler)
    for method, path, handler in [
        ("GET", r"/datagroups", lambda body: (200, looker_state.datagroups())),
        ("GET", r"/datagroups/(?P<datagroup_id>[^/]+)", get_datagroup),
        ("PATCH", r"/datagroups/(?P<datagroup_id>[^/]+)", update_datagroup),
        ("GET", r"/derived_table/(?P<model>[^/]+)/(?P<view>[^/]+)/start", start_pdt),
        ("GET", r"/derived_table/(?P<materialization_id>[^/]+)/status", pdt_status),
        ("GET", r"/lookml_models", lookml_models),
        ("GET", r"/lookml_models/(?P<name>[^/]+)", get_lookml_model),
        ("GET", r"/projects/(?P<project_id>[^/]+)/validate", validation_results),
        ("POST", r"/projects/(?P<project_id>[^/]+)/validate", validate),
    ]
]


class LookerHandler(SandboxHandler):
    """Authenticates, routes and logs each request; the log never holds bodies or headers."""

    name = "looker"
    secret_params = frozenset({"client_secret", "access_token"})

    def answer(self, method: str, path: str, query: dict[str, list[str]], raw: bytes) -> Answer:
        status, payload = self._answer(method, path, query, raw)
        return status, payload, {}

    def _answer(self, method: str, path: str, query: dict[str, list[str]], raw: bytes) -> Reply:
        if (method, path) == ("POST", API + "/login"):
            return login({**query, **parse_qs(raw.decode())})
        scheme, _, token = (self.headers.get("Authorization") or "").partition(" ")
        if scheme.lower() not in ("bearer", "token") or not looker_state.token_is_valid(token):
            return 401, error("Requires authentication.")
        # looker-sdk logs out at /api/logout; Looker answers the versioned path too.
        if method == "DELETE" and path in (API + "/logout", "/api/logout"):
            looker_state.revoke_token(token)
            return 204, None
        found = route(ROUTES, method, path)
        return self._call(*found, raw) if found else (404, error("Not found"))

    def _call(self, handler: Callable[..., Reply], params: dict[str, str], raw: bytes) -> Reply:
        try:
            body = json.loads(raw) if raw else None
        except ValueError:
            return 400, error("Request body is not valid JSON.")
        try:
            return handler(body, **params)
        except looker_state.NotFound as missing:
            return 404, error(str(missing))
        except looker_state.Invalid as invalid:
            issue = {"field": invalid.field, "code": "invalid", **error(str(invalid))}
            return 422, {**error("Validation Failed"), "errors": [issue]}
