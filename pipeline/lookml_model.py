"""One asset per LookML model, `lookml/<model>`, upstream of the model's Looker refreshes: its
blocking checks judge what Looker would serve before any refresh calls Looker."""

from collections.abc import Callable, Iterator, Mapping
from dataclasses import dataclass
from pathlib import Path

import yaml
from dagster import (
    AssetCheckExecutionContext,
    AssetCheckKey,
    AssetCheckResult,
    AssetChecksDefinition,
    AssetCheckSeverity,
    AssetCheckSpec,
    AssetExecutionContext,
    AssetKey,
    AssetsDefinition,
    Failure,
    MaterializeResult,
    asset,
    multi_asset_check,
)
from dagster_looker import LookerResource

from pipeline import report
from pipeline.automation import CHECK_CONDITION, REFRESH_CONDITION
from pipeline.contract import Contract
from pipeline.looker import Refresh, refresh_model
from pipeline.looker_checks import LOOKML_VALID, NO_PII_EXPOSED, pii_findings
from pipeline.looker_lineage import lookml_dir, refreshes_file
from pipeline.looker_sql import (
    branch,
    data_tests_pass,
    explores_run,
    joins_hold,
    open_session,
    project_validates,
)
from pipeline.lookml_project import LOOKML_DIGEST, Model, load_model, project_digest
from pipeline.lookml_rules import (
    Outcome,
    columns_in_contracts,
    deleted_rows_filtered,
    model_views,
    served_explores,
)
from pipeline.warehouse import Warehouse

VIEW_COLUMNS = "view_columns_are_in_contracts"
EXPLORES_RUN = "explores_compile_and_run"
JOINS_HOLD = "joins_match_declared_relationship"
DELETED_FILTERED = "deleted_rows_are_filtered"
DATA_TESTS = "lookml_data_tests_pass"
DESCRIPTIONS = {
    LOOKML_VALID: "Looker validates the LookML project.",
    NO_PII_EXPOSED: "Every dimension showing a raw PII column needs required_access_grants or "
    "hidden: yes.",
    VIEW_COLUMNS: "Every ${TABLE}.column a view reads exists in the contract of its table.",
    EXPLORES_RUN: "Every dimension and measure of every explore compiles to SQL that runs "
    "(LIMIT 0).",
    JOINS_HOLD: "Each many_to_one / one_to_one join key is unique on its one side.",
    DELETED_FILTERED: "Explores over tables with _fivetran_deleted exclude deleted rows.",
    DATA_TESTS: "The model's LookML data tests (test: blocks) pass.",
}
# Only this rule may be relaxed to warn (looker_refreshes.yaml, `checks:`); the rest always block.
ADJUSTABLE = {DELETED_FILTERED: "warn"}


@dataclass(frozen=True)
class LookmlModel:
    name: str
    deps: tuple[AssetKey, ...]  # the published tables the model's refreshes read
    views: tuple[str, ...]  # views the refreshes put in front of users
    default_schema: str | None = None  # the model connection's, for unqualified table names
    problems: tuple[str, ...] = ()  # the refreshes' unresolved lineage or ungated reads


def lookml_key(model: str) -> AssetKey:
    return AssetKey(["lookml", model])


def lookml_models(refreshes: list[Refresh]) -> list[LookmlModel]:
    """One LookmlModel per model that at least one loaded refresh belongs to."""
    by_model: dict[str, list[Refresh]] = {}
    for refresh in refreshes:
        by_model.setdefault(refresh_model(refresh), []).append(refresh)
    return [
        LookmlModel(
            name,
            tuple(dict.fromkeys(k for r in group for k in r.deps)),
            tuple(sorted({v for r in group for v in r.views})),
            group[0].default_schema,
            tuple(dict.fromkeys(p for r in group for p in r.problems)),
        )
        for name, group in sorted(by_model.items())
    ]


def check_severities(path: Path | None = None) -> dict[str, str]:
    """Severity of the adjustable Looker checks, from `checks:` in looker_refreshes.yaml."""
    path = path or refreshes_file()
    chosen = (yaml.safe_load(path.read_text(encoding="utf-8")) or {}).get("checks") or {}
    for name, level in chosen.items():
        if name not in ADJUSTABLE or level not in ("error", "warn"):
            raise ValueError(
                f"{path}: checks: {name}: {level!r}; only {', '.join(ADJUSTABLE)} can be set, "
                "to error or warn"
            )
    return {**ADJUSTABLE, **chosen}


def build_lookml_asset(model: LookmlModel) -> AssetsDefinition:
    @asset(
        key=lookml_key(model.name),
        deps=list(model.deps),
        group_name="looker",
        kinds={"looker"},
        description=f"What Looker serves for model {model.name}; its checks gate every refresh.",
        automation_condition=REFRESH_CONDITION,
    )
    def lookml_model(context: AssetExecutionContext, looker: LookerResource):
        try:
            sdk = looker.get_sdk()
            project = open_session(sdk, model.name)
            explores = [e.name for e in sdk.lookml_model(model.name).explores or []]
        except Exception as error:
            raise Failure(f"Looker did not describe model {model.name}: {error}") from None
        return MaterializeResult(
            metadata={
                "project": project,
                "branch": branch() or "production",
                LOOKML_DIGEST: project_digest(lookml_dir()),
                "explores": explores,
            }
        )

    return lookml_model


def build_lookml_checks(
    model: LookmlModel, contracts: Mapping[str, Contract], severities: Mapping[str, str]
) -> AssetChecksDefinition:
    """The Looker-side checks of one model, blocking its refreshes."""
    key = lookml_key(model.name)
    level = {name: severities.get(name, "error") for name in DESCRIPTIONS}

    @multi_asset_check(
        specs=[
            AssetCheckSpec(
                name,
                asset=key,
                blocking=level[name] == "error",
                description=text,
                automation_condition=CHECK_CONDITION,
            )
            for name, text in DESCRIPTIONS.items()
        ],
        name=f"lookml__{model.name}__checks",
        can_subset=True,
    )
    def lookml_checks(
        context: AssetCheckExecutionContext, looker: LookerResource, warehouse: Warehouse
    ):
        selected = {k.name for k in context.selected_asset_check_keys if k.asset_key == key}
        yield from report.recorded(
            context, _results(key, model, selected, level, looker, warehouse, contracts)
        )

    return lookml_checks


def _results(
    key: AssetKey,
    model: LookmlModel,
    selected: set[str],
    level: Mapping[str, str],
    looker: LookerResource,
    warehouse: Warehouse,
    contracts: Mapping[str, Contract],
) -> Iterator[AssetCheckResult]:
    session: dict[str, object] = {}

    def api() -> tuple[object, str]:
        if not session:  # one login (and, on a branch, one dev-mode checkout) for every check
            sdk = looker.get_sdk()
            session.update(sdk=sdk, project=open_session(sdk, model.name))
        return session["sdk"], str(session["project"])

    def lookml() -> Model:
        if "lookml" not in session:
            session["lookml"] = load_model(lookml_dir(), model.name)
        return session["lookml"]  # type: ignore[return-value]

    def views() -> list[str]:
        return model_views(lookml(), model.views)

    rules: dict[str, Callable[[], Outcome]] = {
        LOOKML_VALID: lambda: project_validates(*api()),
        NO_PII_EXPOSED: lambda: _pii(model, views(), contracts),
        VIEW_COLUMNS: lambda: columns_in_contracts(lookml(), views(), contracts),
        EXPLORES_RUN: lambda: explores_run(api()[0], model.name, served_explores(lookml())),
        JOINS_HOLD: lambda: joins_hold(api()[0], lookml(), contracts),
        DELETED_FILTERED: lambda: deleted_rows_filtered(lookml(), contracts, warehouse),
        DATA_TESTS: lambda: data_tests_pass(api()[0], api()[1], model.name, lookml().tests),
    }
    judged = {"branch": branch() or "production", LOOKML_DIGEST: project_digest(lookml_dir())}
    for name, rule in rules.items():
        if name not in selected:
            continue
        try:
            outcome = rule()
        except Exception as error:  # fail closed: a check that could not run has not passed
            outcome = Outcome([f"could not run: {' '.join(str(error).split())}"], "")
        yield AssetCheckResult(
            asset_key=key,
            check_name=name,
            passed=outcome.passed,
            severity=AssetCheckSeverity.ERROR
            if level[name] == "error"
            else AssetCheckSeverity.WARN,
            description=outcome.summary,
            metadata={**outcome.metadata, **judged},
        )


def _pii(model: LookmlModel, views: list[str], contracts: Mapping[str, Contract]) -> Outcome:
    findings = pii_findings(model.name, views, contracts, model.default_schema, model.problems)
    return Outcome(
        findings, f"no raw PII shown ungranted in {len(views)} views", {"exposed": findings}
    )


def check_keys(model: str) -> list[AssetCheckKey]:
    return [AssetCheckKey(lookml_key(model), name) for name in DESCRIPTIONS]
