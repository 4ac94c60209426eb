"""No PII column is shown without an access grant (judged on lookml/<model>, see lookml_model.py)."""

from collections.abc import Iterable, Mapping

from pipeline.contract import Contract
from pipeline.looker_exposure import exposed_pii
from pipeline.looker_lineage import lookml_dir

LOOKML_VALID = "lookml_is_valid"
NO_PII_EXPOSED = "no_pii_shown_without_access_grant"


def pii_findings(
    model: str,
    views: Iterable[str],
    contracts: Mapping[str, Contract],
    default_schema: str | None,
    problems: Iterable[str] = (),
) -> list[str]:
    """Fields showing raw PII ungranted, and the refreshes' lineage problems (no partial pass)."""
    findings = exposed_pii(lookml_dir(), model, views, contracts, default_schema)
    # Views the lineage could not resolve were not analysed: no pass on a partial picture.
    return findings + [f"refresh problem: {problem}" for problem in problems]
