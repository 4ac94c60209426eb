"""A Looker-API-compatible (4.0) server on 127.0.0.1 for the real looker-sdk."""

import json
import re
from collections.abc import Callable, Iterator
from contextlib import contextmanager, nullcontext
from typing import Any
from urllib.parse import parse_qs

from pipeline.sandbox import looker_project, looker_queries, looker_state, server
from pipeline.sandbox.looker_state import clear_faults, set_faults
from pipeline.sandbox.server import Answer, Route, SandboxHandler, route, serve
from pipeline.warehouse import Warehouse
from pipeline.warehouse.base import KEPT

__all__ = ["clear_faults", "requests_seen", "sandbox_url", "set_faults"]

API = "/api/4.0"
DOCS = "https://cloud.google.com/looker/docs/r/api/4.0"

Reply = tuple[int, Any]  # status and JSON payload of one endpoint

# The database connection behind queries and PDT builds: given by the caller (the pipeline's
# warehouse resource), so the sandbox never chooses an environment itself.
_connection: dict[str, Warehouse | None] = {"warehouse": None}


def sandbox_url(warehouse: Warehouse | None = None) -> str:
    """Base URL of this process's Looker sandbox (started on first use); looker-sdk adds /api/4.0.

    With a warehouse, the sandbox runs queries, SQL Runner, data tests and PDT builds in it.
    """
    looker_state.ensure_state()
    if warehouse is not None:
        _connection["warehouse"] = warehouse
    return serve("looker", LookerHandler)


def _warehouse() -> Warehouse | None:
    return _connection["warehouse"]


@contextmanager
def _connected() -> Iterator[Warehouse | None]:
    """The warehouse, on the process's kept connection for the request's queries."""
    # Looker pools its connections. The sandbox keeps one open across a burst of requests (a
    # LookML step's explore queries, one after another), because each DuckDB open reads the whole
    # catalog (0.25-0.4 s at 1,000 tables); briefly, as other processes wait on the file meanwhile.
    # It is the process's one kept connection, which its own DuckDB queries use too.
    warehouse = _warehouse()
    with KEPT.use(warehouse) if warehouse is not None else nullcontext():
        yield warehouse


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
    _project(project_id)
    return 200, looker_project.validation(
        looker_project.project(), looker_state.faults()["validation_errors"]
    )


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
    build = lambda model, view: looker_queries.build_pdt(_warehouse(), model, view)  # noqa: E731
    return 200, looker_state.check_build(materialization_id, build)


def run_inline_query(body, result_format: str) -> Reply:
    if result_format not in ("json", "sql"):
        raise looker_state.Invalid(
            "result_format", f"the sandbox answers json or sql, not {result_format}"
        )
    query = dict(body or {})
    if looker_project.session.limit is not None:
        query["limit"] = looker_project.session.limit
    with _connected() as warehouse:
        return 200, looker_queries.run_query(warehouse, query, result_format)


def run_sql_query(body, slug: str, result_format: str) -> Reply:
    if result_format != "json":
        raise looker_state.Invalid("result_format", "the sandbox answers json")
    with _connected() as warehouse:
        return 200, looker_queries.run_sql(warehouse, slug)


def run_lookml_tests(body, project_id: str) -> Reply:
    _project(project_id)
    query = looker_project.session.query
    model, test = (query.get(k, [None])[0] for k in ("model", "test"))
    with _connected() as warehouse:
        return 200, looker_queries.run_tests(warehouse, model, test)


def lookml_tests(body, project_id: str) -> Reply:
    _project(project_id)
    return 200, looker_queries.list_tests()


def get_session(body) -> Reply:
    return 200, _session()


def update_session(body) -> Reply:
    looker_state.update_session(looker_project.session.token, body or {})
    return 200, _session()


def _session() -> dict[str, Any]:
    found = looker_state.session(looker_project.session.token)
    return {"workspace_id": found["workspace_id"], "sudo_user_id": None, "can": {}}


def get_git_branch(body, project_id: str) -> Reply:
    _project(project_id)
    found = looker_state.session(looker_project.session.token)
    return 200, _branch(found.get("branch") if found["workspace_id"] == "dev" else None)


def update_git_branch(body, project_id: str) -> Reply:
    """Check out a branch the sandbox serves from its branches folder, in a dev-mode session."""
    _project(project_id)
    name = str((body or {}).get("name") or "")
    if looker_project.branch_dir(name) is None:
        raise looker_state.NotFound(f"Branch '{name}' not found in project '{project_id}'")
    looker_state.checkout(looker_project.session.token, name)
    return 200, _branch(name)


def _branch(name: str | None) -> dict[str, Any]:
    return {"name": name or "production", "remote": "origin", "readonly": name is None,
            "is_production": name is None, "personal": False, "can": {}}  # fmt: skip


def _project(project_id: str) -> None:
    if project_id != looker_project.project().name:
        raise looker_state.NotFound(f"Project '{project_id}' not found")


PROJECT = r"/projects/(?P<project_id>[^/]+)"
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
        ("GET", PROJECT + r"/validate", validation_results),
        ("POST", PROJECT + r"/validate", validate),
        (
            "GET",
            r"/lookml_models/(?P<model>[^/]+)/explores/(?P<explore>[^/]+)",
            lambda body, model, explore: (200, looker_queries.describe_explore(model, explore)),
        ),
        ("POST", r"/queries/run/(?P<result_format>[^/]+)", run_inline_query),
        ("POST", r"/sql_queries", lambda body: (200, looker_state.save_sql_query(body or {}))),
        ("POST", r"/sql_queries/(?P<slug>[^/]+)/run/(?P<result_format>[^/]+)", run_sql_query),
        ("GET", PROJECT + r"/lookml_tests", lookml_tests),
        ("GET", PROJECT + r"/lookml_tests/run", run_lookml_tests),
        ("GET", r"/session", get_session),
        ("PATCH", r"/session", update_session),
        ("GET", PROJECT + r"/git_branch", get_git_branch),
        ("PUT", PROJECT + r"/git_branch", update_git_branch),
    ]  # fmt: skip
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
        if not found:
            return 404, error("Not found")
        # The request's session decides which branch of the project it sees.
        saved = looker_state.session(token)
        looker_project.session.token = token
        looker_project.session.project = None  # listed afresh for each request
        looker_project.session.query = query
        looker_project.session.limit = (query.get("limit") or [None])[0]
        looker_project.session.branch = (
            saved.get("branch") if saved["workspace_id"] == "dev" else None
        )
        return self._call(*found, raw)

    def _call(self, handler: Callable[..., Reply], params: dict[str, str], raw: bytes) -> Reply:
        try:
            body = json.loads(raw) if raw else None
        except ValueError:
            return 400, error("Request body is not valid JSON.")
        try:
            return handler(body, **params)
        except (looker_state.NotFound, FileNotFoundError) as missing:
            return 404, error(str(missing))
        except looker_queries.NoConnection as missing:
            return 500, error(str(missing))
        except looker_state.Invalid as invalid:
            issue = {"field": invalid.field, "code": "invalid", **error(str(invalid))}
            return 422, {**error("Validation Failed"), "errors": [issue]}
