"""The LookML project as the Looker sandbox serves it: models, explores, datagroups, PDT views."""

import fnmatch
import hashlib
import os
import threading
from dataclasses import dataclass
from functools import cache
from pathlib import Path
from typing import Any

from pipeline.looker_lineage import lookml_dir
from pipeline.lookml_project import parsed
from pipeline.settings import sandbox_dir

PERSISTENCE = ("datagroup_trigger", "sql_trigger_value", "persist_for", "interval_trigger")


@dataclass(frozen=True)
class Model:
    name: str
    label: str
    file: str
    connection: str
    explores: tuple[dict[str, Any], ...]
    datagroups: tuple[str, ...]
    views: tuple[str, ...]
    pdts: tuple[str, ...]
    tests: tuple[dict[str, Any], ...] = ()  # LookML `test:` blocks in the model's files


@dataclass(frozen=True)
class Project:
    name: str
    digest: str
    models: dict[str, Model]
    datagroups: dict[str, tuple[str, str]]  # datagroup id -> (model, name)
    views: dict[str, dict[str, Any]]  # every view of the project by name
    branch: str = "production"


# The git branch the current request's dev-mode session has checked out (None: production).
session = threading.local()


def branches_dir() -> Path:
    """Where the sandbox serves branches from: one LookML project folder per branch name."""
    return Path(os.environ.get("TOLLGATE_LOOKER_BRANCHES_DIR") or sandbox_dir() / "looker_branches")


def branch_dir(branch: str) -> Path | None:
    root = branches_dir().resolve()
    path = (root / branch).resolve()
    return path if path.is_relative_to(root) and path != root and path.is_dir() else None


def project() -> Project:
    """Production: the project the pipeline reads too (TOLLGATE_LOOKML_DIR, else pipeline/lookml);
    in a dev-mode session, the checked-out branch's folder. Listed once per request."""
    if (seen := getattr(session, "project", None)) is not None:
        return seen
    branch = getattr(session, "branch", None)
    folder = branch_dir(branch) if branch else None
    if branch and folder is None:
        raise FileNotFoundError(f"branch {branch!r} is not in {branches_dir()}")
    root = folder or lookml_dir()
    found = _read(root, branch or "production", _signature(root))
    if hasattr(session, "project"):  # in a request (looker_api starts it at None): one listing
        session.project = found
    return found


def _signature(root: Path) -> tuple[tuple[str, int, int], ...]:
    """Files with their change times: an edited project is read again, an unchanged one is not."""
    # Strings and os.walk, not Path.rglob: at 1,000 tables (1,100 files) a listing took 7 ms
    # against 19-31 ms, for each of the 2,900 requests of a gate (benchmarks/README.md).
    files = sorted(
        os.path.join(base, name)
        for base, _, names in os.walk(root)
        for name in names
        if name.endswith((".lkml", ".lookml"))
    )
    return tuple((path, (stat := os.stat(path)).st_mtime_ns, stat.st_size) for path in files)


@cache
def _read(root: Path, branch: str, signature: tuple[tuple[str, int, int], ...]) -> Project:
    files = [Path(path) for path, _, _ in signature]
    # The pipeline's own parse, kept by text digest: a step forked after the definitions were
    # built has every file parsed already, so answering a request parses nothing.
    docs = {
        p.relative_to(root).as_posix(): parsed(p.read_text(encoding="utf-8"))
        for p in files
        if p.suffix == ".lkml"
    }
    views = {f: d.get("views", []) for f, d in docs.items() if f.endswith(".view.lkml")}
    models = {}
    for file, doc in docs.items():
        if file.endswith(".model.lkml"):
            name = Path(file).name.removesuffix(".model.lkml")
            patterns = [p.lstrip("/") for p in doc.get("includes", [])]
            matched = {f for p in patterns for f in fnmatch.filter(docs, p)}
            files_in = [f for f in docs if f in matched]
            included = [v for f in files_in for v in views.get(f, [])]
            models[name] = Model(
                name=name,
                label=doc.get("label", name.replace("_", " ").title()),
                file=file,
                connection=doc.get("connection", ""),
                explores=tuple(doc.get("explores", [])),
                datagroups=tuple(d["name"] for d in doc.get("datagroups", [])),
                views=tuple(v["name"] for v in included),
                pdts=tuple(
                    v["name"] for v in included if PERSISTENCE & v.get("derived_table", {}).keys()
                ),
                tests=tuple(t for f in [file, *files_in] for t in docs[f].get("tests", [])),
            )
    # Looker numbers datagroups itself; these ids are stable because they follow file order.
    keys = [(m.name, d) for m in models.values() for d in m.datagroups]
    return Project(
        name=docs.get("manifest.lkml", {}).get("project_name", root.name),
        digest=hashlib.sha1(b"".join(p.read_bytes() for p in files)).hexdigest(),
        models=models,
        datagroups={str(i): key for i, key in enumerate(keys, start=1)},
        views={v["name"]: v for vs in views.values() for v in vs},
        branch=branch,
    )


def lookml_model(model: Model, project_name: str) -> dict[str, Any]:
    """A LookmlModel as GET /lookml_models returns it."""
    return {
        "can": {"index": True, "show": True},
        "allowed_db_connection_names": [model.connection],
        "explores": [
            {
                "name": explore["name"],
                "description": explore.get("description"),
                "label": explore.get("label", explore["name"].replace("_", " ").title()),
                "hidden": explore.get("hidden") == "yes",
                "group_label": explore.get("group_label", model.label),
            }
            for explore in model.explores
        ],
        "has_content": True,
        "label": model.label,
        "name": model.name,
        "project_name": project_name,
        "unlimited_db_connections": False,
    }


def validation(project: Project, errors: list[str | dict[str, Any]]) -> dict[str, Any]:
    """A ProjectValidation reporting `errors`: each a message, or a dict of ProjectError fields."""
    first = next(iter(project.models.values()))

    def project_error(found: str | dict[str, Any]) -> dict[str, Any]:
        fields = {"message": found} if isinstance(found, str) else found
        return {
            "code": "lookml_error",
            "severity": "error",
            "kind": "lookml",
            "field_name": None,
            "file_path": f"{project.name}/{first.file}",
            "line_number": 1,
            "model_id": first.name,
            "explore": None,
            "help_url": None,
            "params": {},
            "sanitized_message": fields.get("message"),
            **fields,
        }

    return {
        "errors": [project_error(e) for e in errors],
        "project_digest": project.digest,
        "models_not_validated": [],
        "computation_time": 0.05,
    }
