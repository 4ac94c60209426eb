"""Looker-side checks: the LookML validates, and no PII column is shown without an access grant."""

from collections.abc import Mapping
from typing import Any

from dagster import (
    AssetCheckExecutionContext,
    AssetCheckResult,
    AssetChecksDefinition,
    AssetCheckSeverity,
    AssetCheckSpec,
    AssetKey,
    multi_asset_check,
)
from dagster_looker import LookerResource

from pipeline import report
from pipeline.contract import Contract
from pipeline.looker import Refresh
from pipeline.looker_exposure import exposed_pii
from pipeline.looker_lineage import lookml_dir

LOOKML_VALID = "lookml_is_valid"
NO_PII_EXPOSED = "no_pii_shown_without_access_grant"


def build_looker_checks(
    refresh: Refresh, contracts: Mapping[str, Contract]
) -> AssetChecksDefinition:
    """LookML validation and PII exposure checks on one Looker refresh asset."""
    key = AssetKey(["looker", refresh.name])
    model = (refresh.datagroup or refresh.pdt or ("", ""))[0]

    @multi_asset_check(
        specs=[
            AssetCheckSpec(
                LOOKML_VALID,
                asset=key,
                blocking=True,
                description=f"Looker validates the LookML project behind model {model}.",
            ),
            AssetCheckSpec(
                NO_PII_EXPOSED,
                asset=key,
                blocking=True,
                description="Every dimension showing a raw PII column needs "
                "required_access_grants or hidden: yes.",
            ),
        ],  # fmt: skip
        name=f"looker__{refresh.name}__lookml",
        can_subset=True,
    )
    def looker_checks(context: AssetCheckExecutionContext, looker: LookerResource):
        selected = {k.name for k in context.selected_asset_check_keys}

        def results():
            if LOOKML_VALID in selected:
                yield _validate(key, looker, model)
            if NO_PII_EXPOSED in selected:
                yield _pii(key, refresh, contracts)

        yield from report.recorded(context, results())

    return looker_checks


def _validate(key: AssetKey, looker: LookerResource, model: str) -> AssetCheckResult:
    try:
        sdk = looker.get_sdk()
        project = sdk.lookml_model(model).project_name
        validation = sdk.validate_project(project)
    except Exception as error:  # fail closed: a validation we could not run is not a pass
        return _result(key, LOOKML_VALID, False, f"Looker validation could not run: {error}", {})
    errors = [
        f"{e.file_path or '?'}:{e.line_number or '?'} {e.message}"
        for e in validation.errors or []
        if (e.severity or "error") in ("error", "fatal")
    ]
    summary = f"{len(errors)} LookML errors in project {project}" if errors else (
        f"LookML project {project} validates"
    )  # fmt: skip
    return _result(key, LOOKML_VALID, not errors, summary, {"errors": errors, "project": project})


def _pii(key: AssetKey, refresh: Refresh, contracts: Mapping[str, Contract]) -> AssetCheckResult:
    model = (refresh.datagroup or refresh.pdt or ("", ""))[0]
    try:
        findings = exposed_pii(
            lookml_dir(), model, refresh.views, contracts, refresh.default_schema
        )
    except Exception as error:
        return _result(key, NO_PII_EXPOSED, False, f"LookML could not be read: {error}", {})
    # Views the lineage could not resolve were not analysed: no pass on a partial picture.
    findings += [f"refresh problem: {problem}" for problem in refresh.problems]
    summary = "; ".join(findings) or f"no raw PII shown ungranted in {len(refresh.views)} views"
    return _result(key, NO_PII_EXPOSED, not findings, summary, {"exposed": findings})


def _result(
    key: AssetKey, name: str, passed: bool, summary: str, metadata: dict[str, Any]
) -> AssetCheckResult:
    return AssetCheckResult(
        asset_key=key,
        check_name=name,
        passed=passed,
        severity=AssetCheckSeverity.ERROR,
        description=summary,
        metadata=metadata,
    )
