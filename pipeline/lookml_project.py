"""A LookML model as Looker assembles it: its included files, with refinements and extends applied."""

import glob
import hashlib
from dataclasses import dataclass, field
from functools import cached_property, lru_cache
from importlib.metadata import version
from pathlib import Path
from typing import Any

import lkml

from pipeline import load_cache

# Lists of named sub-objects that refinements and extends merge by name instead of replacing.
NAMED_LISTS = ("dimensions", "dimension_groups", "measures", "filters", "parameters", "joins")
KINDS = ("views", "explores")
LKML_VERSION = version("lkml")  # the parser is part of what a parse is cached under


@dataclass
class Model:
    """One model's views and explores (name -> merged properties; `_file` and `_files` say where)."""

    name: str
    file: str
    connection: str
    persist_with: str | None
    datagroups: dict[str, dict[str, Any]] = field(default_factory=dict)
    tests: set[str] = field(default_factory=set)  # LookML data tests (`test:` blocks)
    views: dict[str, dict[str, Any]] = field(default_factory=dict)
    explores: dict[str, dict[str, Any]] = field(default_factory=dict)
    problems: list[str] = field(default_factory=list)


def origin(props: dict[str, Any], key: str | None = None) -> str:
    """The file that set `key` on a merged object (or that defined the object)."""
    return props.get("_files", {}).get(key, props["_file"])


def load_model(project: Path, name: str) -> Model:
    """Read `<name>.model.lkml` and every file it includes, transitively, as Looker would."""
    return Project(project).model(name)


class Project:
    """A LookML project folder: its model files found in one walk, each file parsed at most once."""

    def __init__(self, folder: Path):
        self.folder = folder
        self.docs: dict[str, dict[str, Any]] = {}
        self.errors: dict[str, str] = {}  # file -> why it could not be parsed
        self.models: dict[str, Model] = {}

    @cached_property
    def model_files(self) -> dict[str, list[Path]]:
        """Model name -> the files defining it, anywhere in the project."""
        found: dict[str, list[Path]] = {}
        for path in sorted(self.folder.rglob("*.model.lkml")):
            found.setdefault(path.name.removesuffix(".model.lkml"), []).append(path)
        return found

    def model(self, name: str) -> Model:
        """The model as Looker assembles it (built once per Project)."""
        if name not in self.models:
            self.models[name] = self._assemble(name)
        return self.models[name]

    def _assemble(self, name: str) -> Model:
        project = self.folder
        if not project.is_dir():
            raise FileNotFoundError(f"LookML project folder {project} does not exist")
        found = self.model_files.get(name, [])
        if len(found) != 1:
            raise LookupError(
                f"{project}: no model file {name}.model.lkml"
                if not found
                else f"{project}: model {name!r} is defined in {len(found)} files"
            )
        problems: list[str] = []
        model_file = found[0].relative_to(project).as_posix()
        files = self.included(model_file, problems)
        if not files:
            raise LookupError(f"{project}: {problems[0]}")  # the model file did not parse
        doc = self.docs[model_file]
        model = Model(name, model_file, doc.get("connection", ""), doc.get("persist_with"))
        model.problems.extend(problems)
        objects: dict[str, list[dict[str, Any]]] = {kind: [] for kind in KINDS}
        for file in files:
            for kind in KINDS:
                objects[kind].extend(_tagged(obj, file) for obj in self.docs[file].get(kind, []))
            model.datagroups |= {
                d["name"]: _tagged(d, file) for d in self.docs[file].get("datagroups", [])
            }
            model.tests |= {t["name"] for t in self.docs[file].get("tests", [])}
        for kind in KINDS:
            assembled = _assemble(kind[:-1], objects[kind], model.problems)
            setattr(model, kind, assembled)
        return model

    def included(self, start: str, problems: list[str]) -> list[str]:
        """`start` and every file it includes, transitively, in include order."""
        order: list[str] = []

        def visit(file: str) -> None:
            if file in order or not self._parse(file, problems):
                return
            order.append(file)
            for pattern in self.docs[file].get("includes", []):
                for match in self._matches(file, pattern, problems):
                    visit(match)

        visit(start)
        return order

    def _parse(self, file: str, problems: list[str]) -> bool:
        if file not in self.docs and file not in self.errors:
            try:
                self.docs[file] = parsed((self.folder / file).read_text(encoding="utf-8"))
            except Exception as error:  # a file we cannot read could define anything
                self.errors[file] = f"{file}: LookML could not be parsed: {error}"
        if file in self.errors:
            problems.append(self.errors[file])
            return False
        return True

    def _matches(self, file: str, pattern: str, problems: list[str]) -> list[str]:
        if pattern.startswith("//"):
            problems.append(
                f"{file}: include {pattern!r} imports another project, which is not resolved"
            )
            return []
        base = self.folder if pattern.startswith("/") else (self.folder / file).parent
        # Looker lets an include leave out `.lkml` (views, explores) or `.lookml` (dashboards).
        root = self.folder.resolve()
        found = {
            (base / match).resolve()
            for suffix in ("", ".lkml", ".lookml")
            for match in glob.glob(pattern.lstrip("/") + suffix, root_dir=base, recursive=True)
        }
        matches = sorted(p.relative_to(root).as_posix() for p in found if p.is_relative_to(root))
        if not matches:
            problems.append(f"{file}: include {pattern!r} matches no file")
        return [m for m in matches if m.endswith(".lkml")]  # dashboards define no views


@lru_cache(maxsize=4096)
def parsed(text: str) -> dict[str, Any]:
    """lkml's parse of one file's text, kept by its digest (callers never mutate the result)."""
    digest = load_cache.key(f"lkml {LKML_VERSION}", text)
    doc = load_cache.get("lkml", digest)
    if doc is None:
        doc = lkml.load(text)
        load_cache.put("lkml", digest, doc)
    return doc


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
