"""Which warehouse tables each Looker refresh reads, derived from the LookML project."""

import os
import warnings
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import lkml
from dagster import AssetKey, AssetSpec, BetaWarning
from dagster_looker import DagsterLookerLkmlTranslator, build_looker_asset_specs

LOOKML_DIR = Path(__file__).parent / "lookml"


def lookml_dir() -> Path:
    """The LookML project to read (TOLLGATE_LOOKML_DIR, else the shipped example)."""
    return Path(os.environ.get("TOLLGATE_LOOKML_DIR") or LOOKML_DIR)


class FivetranTableKeys(DagsterLookerLkmlTranslator):
    """dagster-looker's LookML lineage, with warehouse tables keyed as fivetran/<schema>/<table>."""

    def get_asset_spec(self, lookml_structure: tuple[Path, str, Mapping[str, Any]]) -> AssetSpec:
        spec = super().get_asset_spec(lookml_structure)
        _, kind, props = lookml_structure
        if kind != "table":
            return spec
        parts = [part.name.lower() for part in props["table"].parts]
        return spec.replace_attributes(key=AssetKey(["fivetran", *parts[-2:]]))


class Lineage:
    """The LookML graph (dashboards → explores → views → tables) and each model's datagroups."""

    def __init__(self, project: Path):
        if not project.is_dir():
            raise FileNotFoundError(f"LookML project folder {project} does not exist")
        self.project = project
        with warnings.catch_warnings():  # beta API; the dagster-looker minor version is pinned
            warnings.simplefilter("ignore", BetaWarning)
            specs = build_looker_asset_specs(
                project_dir=project, dagster_looker_translator=FivetranTableKeys()
            )
        self.graph = {spec.key: {dep.asset_key for dep in spec.deps} for spec in specs}
        self.models = {
            path.name.removesuffix(".model.lkml"): lkml.load(path.read_text(encoding="utf-8"))
            for path in project.rglob("*.model.lkml")
        }
        self.views = {
            view["name"]: view
            for path in project.rglob("*.view.lkml")
            for view in lkml.load(path.read_text(encoding="utf-8")).get("views", [])
        }

    def reachable(self, starts: set[AssetKey], kind: str) -> set[AssetKey]:
        """Every node of one kind (fivetran, view, explore) reachable from the start nodes."""
        seen, todo = set(), list(starts)
        while todo:
            key = todo.pop()
            if key not in seen:
                seen.add(key)
                todo.extend(self.graph.get(key, ()))
        return {key for key in seen if key.path[0] == kind}

    def view_node(self, view: str) -> AssetKey:
        key = AssetKey(["view", view])
        if key not in self.graph:
            raise LookupError(f"{self.project}: no LookML view named {view!r}")
        return key

    def datagroup_nodes(self, model: str, datagroup: str) -> set[AssetKey]:
        """Every explore the datagroup caches, and every PDT view it triggers."""
        props = self.models.get(model)
        if props is None:
            raise LookupError(f"{self.project}: no model file {model}.model.lkml")
        if datagroup not in {d["name"] for d in props.get("datagroups", [])}:
            raise LookupError(f"{self.project}: model {model!r} defines no datagroup {datagroup!r}")
        explores = {
            AssetKey(["explore", e["name"]])
            for e in props.get("explores", [])
            if e.get("persist_with", props.get("persist_with")) == datagroup
        }
        triggered = {
            self.view_node(name)
            for name, view in self.views.items()
            if view.get("derived_table", {}).get("datagroup_trigger") == datagroup
        }
        return explores | triggered
