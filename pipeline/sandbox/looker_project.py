"""The LookML project as the Looker sandbox serves it: models, explores, datagroups, PDT views."""

import hashlib
from dataclasses import dataclass
from fnmatch import fnmatch
from functools import cache
from pathlib import Path
from typing import Any

import lkml

from pipeline.looker_lineage import lookml_dir

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


@dataclass(frozen=True)
class Project:
    name: str
    digest: str
    models: dict[str, Model]
    datagroups: dict[str, tuple[str, str]]  # datagroup id -> (model, name)


def project() -> Project:
    """The project the pipeline reads too (TOLLGATE_LOOKML_DIR, else pipeline/lookml)."""
    return _read(lookml_dir())


@cache
def _read(root: Path) -> Project:
    files = sorted(p for p in root.rglob("*") if p.suffix in (".lkml", ".lookml"))
    docs = {
        p.relative_to(root).as_posix(): lkml.load(p.read_text(encoding="utf-8"))
        for p in files
        if p.suffix == ".lkml"
    }
    views = {f: d.get("views", []) for f, d in docs.items() if f.endswith(".view.lkml")}
    models = {}
    for file, doc in docs.items():
        if file.endswith(".model.lkml"):
            name = Path(file).name.removesuffix(".model.lkml")
            patterns = [p.lstrip("/") for p in doc.get("includes", [])]
            included = [
                v for f, vs in views.items() if any(fnmatch(f, p) for p in patterns) for v in vs
            ]
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
            )
    # Looker numbers datagroups itself; these ids are stable because they follow file order.
    keys = [(m.name, d) for m in models.values() for d in m.datagroups]
    return Project(
        name=docs.get("manifest.lkml", {}).get("project_name", root.name),
        digest=hashlib.sha1(b"".join(p.read_bytes() for p in files)).hexdigest(),
        models=models,
        datagroups={str(i): key for i, key in enumerate(keys, start=1)},
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
