"""A LookML model as Looker assembles it: its included files, with refinements and extends applied."""

import glob
import hashlib
from dataclasses import dataclass, field
from functools import lru_cache
from pathlib import Path
from typing import Any

import lkml

# Lists of named sub-objects that refinements and extends merge by name instead of replacing.
NAMED_LISTS = ("dimensions", "dimension_groups", "measures", "filters", "parameters", "joins")
KINDS = ("views", "explores")


@dataclass
class Model:
    """One model's views and explores (name -> merged properties; `_file` and `_files` say where)."""

    name: str
    file: str
    connection: str
    persist_with: str | None
    datagroups: set[str] = field(default_factory=set)
    views: dict[str, dict[str, Any]] = field(default_factory=dict)
    explores: dict[str, dict[str, Any]] = field(default_factory=dict)
    problems: list[str] = field(default_factory=list)


def origin(props: dict[str, Any], key: str | None = None) -> str:
    """The file that set `key` on a merged object (or that defined the object)."""
    return props.get("_files", {}).get(key, props["_file"])


def load_model(project: Path, name: str) -> Model:
    """Read `<name>.model.lkml` and every file it includes, transitively, as Looker would."""
    if not project.is_dir():
        raise FileNotFoundError(f"LookML project folder {project} does not exist")
    found = sorted(project.rglob(f"{name}.model.lkml"))
    if len(found) != 1:
        raise LookupError(
            f"{project}: no model file {name}.model.lkml"
            if not found
            else f"{project}: model {name!r} is defined in {len(found)} files"
        )
    reader = _Reader(project)
    model_file = found[0].relative_to(project).as_posix()
    files = reader.included(model_file)
    if not files:
        raise LookupError(f"{project}: {reader.problems[0]}")  # the model file did not parse
    doc = reader.docs[model_file]
    model = Model(name, model_file, doc.get("connection", ""), doc.get("persist_with"))
    model.problems.extend(reader.problems)
    objects: dict[str, list[dict[str, Any]]] = {kind: [] for kind in KINDS}
    for file in files:
        for kind in KINDS:
            objects[kind].extend(_tagged(obj, file) for obj in reader.docs[file].get(kind, []))
        model.datagroups |= {d["name"] for d in reader.docs[file].get("datagroups", [])}
    for kind in KINDS:
        assembled = _assemble(kind[:-1], objects[kind], model.problems)
        setattr(model, kind, assembled)
    return model


class _Reader:
    """Parses the project's .lkml files once each and follows `include:` like Looker."""

    def __init__(self, project: Path):
        self.project = project
        self.docs: dict[str, dict[str, Any]] = {}
        self.problems: list[str] = []

    def included(self, start: str) -> list[str]:
        """`start` and every file it includes, transitively, in include order."""
        order: list[str] = []

        def visit(file: str) -> None:
            if file in order or not self._parse(file):
                return
            order.append(file)
            for pattern in self.docs[file].get("includes", []):
                for match in self._matches(file, pattern):
                    visit(match)

        visit(start)
        return order

    def _parse(self, file: str) -> bool:
        if file not in self.docs:
            try:
                self.docs[file] = _parsed((self.project / file).read_text(encoding="utf-8"))
            except Exception as error:  # a file we cannot read could define anything
                self.problems.append(f"{file}: LookML could not be parsed: {error}")
                return False
        return True

    def _matches(self, file: str, pattern: str) -> list[str]:
        if pattern.startswith("//"):
            self.problems.append(
                f"{file}: include {pattern!r} imports another project, which is not resolved"
            )
            return []
        base = self.project if pattern.startswith("/") else (self.project / file).parent
        # Looker lets an include leave out `.lkml` (views, explores) or `.lookml` (dashboards).
        root = self.project.resolve()
        found = {
            (base / match).resolve()
            for suffix in ("", ".lkml", ".lookml")
            for match in glob.glob(pattern.lstrip("/") + suffix, root_dir=base, recursive=True)
        }
        matches = sorted(p.relative_to(root).as_posix() for p in found if p.is_relative_to(root))
        if not matches:
            self.problems.append(f"{file}: include {pattern!r} matches no file")
        return [m for m in matches if m.endswith(".lkml")]  # dashboards define no views


@lru_cache(maxsize=4096)
def _parsed(text: str) -> dict[str, Any]:
    """lkml's parse of one file's text (parsing dominates; callers never mutate the result)."""
    return lkml.load(text)


def _tagged(obj: dict[str, Any], file: str) -> dict[str, Any]:
    """A copy of the object with it, its fields and joins marked with the file they come from."""
    fields = {
        key: [{**item, "_file": file} for item in obj[key]] for key in NAMED_LISTS if key in obj
    }
    return {**obj, **fields, "_file": file, "_files": {key: file for key in obj}}


def _assemble(
    kind: str, objects: list[dict[str, Any]], problems: list[str]
) -> dict[str, dict[str, Any]]:
    """Apply refinements (`+name`, in include order) to each definition, then resolve `extends`."""
    defined: dict[str, dict[str, Any]] = {}
    for obj in objects:
        name = obj["name"]
        if name.startswith("+"):
            continue
        if name in defined:
            problems.append(
                f"{obj['_file']}: {kind} {name} is also defined in {defined[name]['_file']}"
            )
            continue
        defined[name] = obj
    for obj in objects:
        name = obj["name"]
        if not name.startswith("+"):
            continue
        base = defined.get(name[1:])
        if base is None:
            problems.append(f"{obj['_file']}: refinement {kind} {name} refines nothing")
        elif base.get("final") == "yes":
            problems.append(f"{obj['_file']}: refinement {kind} {name} refines a final {kind}")
        else:
            defined[name[1:]] = _merge(base, obj)

    resolved: dict[str, dict[str, Any]] = {}

    def resolve(name: str, chain: tuple[str, ...]) -> dict[str, Any] | None:
        if name in resolved:
            return resolved[name]
        obj = defined.get(name)
        if obj is None:
            return None
        inherited: dict[str, Any] = {"_file": obj["_file"]}
        for parent in (p for group in obj.get("extends__all", []) for p in group):
            circular = parent in (*chain, name)
            base = None if circular else resolve(parent, (*chain, name))
            if base is None:
                reason = "circularly" if circular else "which is not defined"
                problems.append(f"{origin(obj, 'extends__all')}: {kind} {name} extends "
                                f"{parent} {reason}")  # fmt: skip
                continue
            own = {k: v for k, v in base.items() if k not in ("extension", "extends__all")}
            inherited = _merge(inherited, own)
        resolved[name] = {**_merge(inherited, obj), "name": name}
        return resolved[name]

    for name in defined:
        resolve(name, ())
    return resolved


def _merge(base: dict[str, Any], over: dict[str, Any]) -> dict[str, Any]:
    """`over` on top of `base`: named fields and joins merge by name, other parameters replace."""
    merged = dict(base)
    for key, value in over.items():
        if key in ("name", "_file", "_files"):
            continue
        if key in NAMED_LISTS:
            items = {item["name"]: item for item in merged.get(key, [])}
            for item in value:
                items[item["name"]] = {**items.get(item["name"], {}), **item}
            merged[key] = list(items.values())
        elif key == "extends__all":  # extends in a refinement adds to the object's own
            merged[key] = [*merged.get(key, []), *value]
        elif key == "derived_table" and isinstance(merged.get(key), dict):
            merged[key] = {**merged[key], **value}
        else:
            merged[key] = value
    merged["_files"] = {**base.get("_files", {}), **over.get("_files", {})}
    return merged


LOOKML_DIGEST = "lookml_sha256"  # metadata key: the LookML a result or materialization judged


def project_digest(folder: Path) -> str:
    """sha256 over the LookML files' paths and contents."""
    digest = hashlib.sha256()
    for path in sorted(p for p in folder.rglob("*") if p.suffix in (".lkml", ".lookml")):
        digest.update(path.relative_to(folder).as_posix().encode() + b"\0" + path.read_bytes())
    return digest.hexdigest()
