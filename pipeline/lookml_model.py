"""One asset per LookML model, `lookml/<model>`, upstream of the model's Looker refreshes: its
blocking checks, run in the same step, judge what Looker would serve before any refresh calls Looker."""

from collections.abc import Callable, Iterator, Mapping
from dataclasses import dataclass
from functools import cache
from pathlib import Path
from typing import Any

from dagster import (
    AssetCheckResult,
    AssetCheckSeverity,
    AssetCheckSpec,
    AssetExecutionContext,
    AssetKey,
    AssetsDefinition,
    AssetSpec,
    Failure,
    MaterializeResult,
    multi_asset,
)
from dagster_looker import LookerResource

from pipeline import report
from pipeline.automation import CHECK_CONDITION, REFRESH_CONDITION
from pipeline.contract import Contract
from pipeline.looker import Refresh, refresh_model
from pipeline.looker_checks import LOOKML_VALID, NO_PII_EXPOSED, pii_findings
from pipeline.looker_config import load_config
from pipeline.looker_lineage import lookml_dir, model_reads, refreshes_file
from pipeline.looker_sql import (
    branch,
    data_tests_pass,
    explores_run,
    joins_hold,
    open_session,
    project_validates,
)
from pipeline.lookml_project import LOOKML_DIGEST, Model, Project, load_model, project_digest
from pipeline.lookml_rules import (
    Outcome,
    Readable,
    columns_in_contracts,
    deleted_rows_filtered,
    model_views,
    reads_published,
    served_explores,
)
from pipeline.warehouse import Warehouse

VIEW_COLUMNS = "view_columns_are_in_contracts"
READS_PUBLISHED = "looker_reads_only_published_tables"
EXPLORES_RUN = "explores_compile_and_run"
JOINS_HOLD = "joins_match_declared_relationship"
DELETED_FILTERED = "deleted_rows_are_filtered"
DATA_TESTS = "lookml_data_tests_pass"
DESCRIPTIONS = {
    LOOKML_VALID: "Looker validates the LookML project.",
    NO_PII_EXPOSED: "Every dimension showing a raw PII column needs required_access_grants or "
    "hidden: yes.",
    VIEW_COLUMNS: "Every ${TABLE}.column a view reads exists in the contract of its table.",
    READS_PUBLISHED: "Every explore, persisted derived table and trigger of the model reads only "
    "tables tollgate publishes.",
    EXPLORES_RUN: "Every dimension and measure of every explore compiles to SQL that runs "
    "(LIMIT 0).",
    JOINS_HOLD: "Each many_to_one / one_to_one join key is unique on its one side.",
    DELETED_FILTERED: "Explores over tables with _fivetran_deleted exclude deleted rows.",
    DATA_TESTS: "The model's LookML data tests (test: blocks) pass.",
}
# Only this rule may be relaxed to warn (looker_refreshes.yaml, `checks:`); the rest always block.
ADJUSTABLE = {DELETED_FILTERED: "warn"}
# A model no refresh belongs to is served from the same warehouse all the same: what it reads and
# the raw PII it shows are judged, from the LookML alone (no project validation or queries for a
# model tollgate does not refresh).
SERVED_ALONGSIDE = (READS_PUBLISHED, NO_PII_EXPOSED)


@dataclass(frozen=True)
class LookmlModel:
    name: str
    deps: tuple[AssetKey, ...]  # the published tables the model's refreshes read
    views: tuple[str, ...]  # views the refreshes put in front of users
    default_schema: str | None = None  # the model connection's, for unqualified table names
    problems: tuple[str, ...] = ()  # the refreshes' unresolved lineage or ungated reads
    checks: tuple[str, ...] = tuple(DESCRIPTIONS)  # the Looker checks judged on it
    undeclared_connection: str = ""  # its connection, when looker_refreshes.yaml does not name it
    owners: tuple[str, ...] = ()  # the owners of the published tables it reads


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


def served_alongside(refreshes: list[Refresh], readable: Readable) -> list[LookmlModel]:
    """The project's models no refresh belongs to, unless looker_refreshes.yaml declares their
    connection `warehouse: false`: Looker may serve them from the warehouse, so what they read is
    held to the gate too."""
    project = Project(lookml_dir())
    refreshed = {refresh_model(r) for r in refreshes}
    declared = load_config(refreshes_file())
    refreshed_connections = {r.connection for r in refreshes}
    found = []
    for name in sorted(set(project.model_files) - refreshed):
        try:
            model = project.model(name)
        except (LookupError, FileNotFoundError) as error:  # judged (and failed) at run time
            found.append(LookmlModel(name, (), (), None, (str(error),), SERVED_ALONGSIDE))
            continue
        connection = declared.connection(model.connection)
        if connection and not connection.warehouse:  # another database: not tollgate's to judge
            continue
        schema = connection.default_schema if connection else None
        tables, _ = model_reads(model, schema)
        deps = tuple(readable[t] for t in sorted(tables) if t in readable)
        known = connection or model.connection in refreshed_connections
        undeclared = "" if known else model.connection
        found.append(LookmlModel(name, deps, (), schema, (), SERVED_ALONGSIDE, undeclared))
    return found


def check_severities(path: Path | None = None) -> dict[str, str]:
    """Severity of the adjustable Looker checks, from `checks:` in looker_refreshes.yaml."""
    path = path or refreshes_file()
    chosen = load_config(path).checks
    for name, level in chosen.items():
        if name not in ADJUSTABLE or level not in ("error", "warn"):
            raise ValueError(
                f"{path}: checks: {name}: {level!r}; only {', '.join(ADJUSTABLE)} can be set, "
                "to error or warn"
            )
    return {**ADJUSTABLE, **chosen}


def build_lookml_asset(
    model: LookmlModel,
    contracts: Mapping[str, Contract],
    readable: Readable,
    severities: Mapping[str, str],
) -> AssetsDefinition:
    """lookml/<model> and its Looker checks, in one step; the blocking checks hold its refreshes."""
    key = lookml_key(model.name)
    level = {name: severities.get(name, "error") for name in DESCRIPTIONS}

    @multi_asset(
        name=f"lookml__{model.name}",
        specs=[
            AssetSpec(
                key,
                deps=list(model.deps),
                group_name="looker",
                kinds={"looker"},
                owners=list(model.owners),
                description=f"What Looker serves for model {model.name}; its checks gate every "
                "refresh.",
                automation_condition=REFRESH_CONDITION,
            )
        ],
        check_specs=[
            AssetCheckSpec(
                name,
                asset=key,
                blocking=level[name] == "error",
                description=text,
                automation_condition=CHECK_CONDITION,
            )
            for name, text in DESCRIPTIONS.items()
            if name in model.checks
        ],
        can_subset=True,
    )
    def lookml_model(context: AssetExecutionContext, looker: LookerResource, warehouse: Warehouse):
        api = _login(looker, model.name)
        # What the step judged, on its materialization and every check result: read once.
        served = {"branch": branch() or "production", LOOKML_DIGEST: project_digest(lookml_dir())}
        selected = {k.name for k in context.selected_asset_check_keys}
        if key in context.selected_asset_keys:
            try:
                described = _describe(api, model.name, served)
            except Exception as error:
                reason = " ".join(f"Looker did not describe model {model.name}: {error}".split())
                # Its checks fail with it: none of them may pass on a model Looker did not serve.
                yield from report.recorded(context, _not_run(key, selected, level, reason))
                raise Failure(reason) from None
            yield MaterializeResult(asset_key=key, metadata=described)
        if selected:
            yield from report.recorded(
                context,
                _results(key, model, selected, level, api, warehouse, contracts, readable, served),
            )

    return lookml_model


LookerApi = Callable[[], tuple[Any, str]]  # the step's Looker SDK and the model's project


def _login(looker: LookerResource, model: str) -> LookerApi:
    """One login (and, on a branch, one dev-mode checkout) for everything a step asks Looker."""

    @cache
    def api() -> tuple[Any, str]:
        sdk = looker.get_sdk()
        return sdk, open_session(sdk, model)

    return api


def _describe(api: LookerApi, model: str, served: Mapping[str, str]) -> dict[str, Any]:
    sdk, project = api()
    return {
        "project": project,
        **served,
        "explores": [e.name for e in sdk.lookml_model(model).explores or []],
    }


def _results(
    key: AssetKey,
    model: LookmlModel,
    selected: set[str],
    level: Mapping[str, str],
    api: LookerApi,
    warehouse: Warehouse,
    contracts: Mapping[str, Contract],
    readable: Readable,
    judged: Mapping[str, str],
) -> Iterator[AssetCheckResult]:
    @cache
    def lookml() -> Model:
        return load_model(lookml_dir(), model.name)

    def views() -> list[str]:
        return model_views(lookml(), model.views)

    # The warehouse's own rule first: the Looker requests then share one kept connection, and the
    # step takes the DuckDB file twice, not three times (each time behind other steps' holds:
    # 2.5-3.2 s a step at 1,000 tables against 4.0-4.6 s, benchmarks/README.md).
    rules: dict[str, Callable[[], Outcome]] = {
        DELETED_FILTERED: lambda: deleted_rows_filtered(lookml(), contracts, warehouse),
        LOOKML_VALID: lambda: project_validates(*api()),
        NO_PII_EXPOSED: lambda: _pii(model, views(), contracts),
        VIEW_COLUMNS: lambda: columns_in_contracts(lookml(), views(), contracts),
        READS_PUBLISHED: lambda: _reads(model, lookml(), contracts, readable),
        EXPLORES_RUN: lambda: explores_run(api()[0], model.name, served_explores(lookml())),
        JOINS_HOLD: lambda: joins_hold(api()[0], lookml(), contracts),
        DATA_TESTS: lambda: data_tests_pass(api()[0], api()[1], model.name, lookml().tests),
    }
    for name, rule in rules.items():
        if name not in selected:
            continue
        try:
            outcome = rule()
        except Exception as error:  # fail closed: a check that could not run has not passed
            outcome = _could_not_run(str(error))
        yield _result(key, name, level, outcome, judged)


def _not_run(
    key: AssetKey, selected: set[str], level: Mapping[str, str], reason: str
) -> Iterator[AssetCheckResult]:
    for name in DESCRIPTIONS:
        if name in selected:
            yield _result(key, name, level, _could_not_run(reason), {})


def _could_not_run(reason: str) -> Outcome:
    return Outcome([f"could not run: {' '.join(reason.split())}"], "")


def _result(
    key: AssetKey,
    name: str,
    level: Mapping[str, str],
    outcome: Outcome,
    judged: Mapping[str, Any],
) -> AssetCheckResult:
    return AssetCheckResult(
        asset_key=key,
        check_name=name,
        passed=outcome.passed,
        severity=AssetCheckSeverity.ERROR if level[name] == "error" else AssetCheckSeverity.WARN,
        description=outcome.summary,
        metadata={**outcome.metadata, **judged},
    )


def _reads(
    model: LookmlModel, lookml: Model, contracts: Mapping[str, Contract], readable: Readable
) -> Outcome:
    outcome = reads_published(lookml, contracts, readable, model.default_schema)
    if outcome.findings and model.undeclared_connection:
        outcome.findings.append(
            f"model {model.name}'s connection {model.undeclared_connection!r} is not declared in "
            f"{refreshes_file().name}, so it is judged as the warehouse's: if it is another "
            "database, declare it under connections: with warehouse: false"
        )
    return outcome


def _pii(model: LookmlModel, views: list[str], contracts: Mapping[str, Contract]) -> Outcome:
    findings = pii_findings(model.name, views, contracts, model.default_schema, model.problems)
    return Outcome(
        findings, f"no raw PII shown ungranted in {len(views)} views", {"exposed": findings}
    )
