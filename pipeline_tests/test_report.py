"""Scope: the audit report every run writes (JUnit XML and JSON), from in-process gate runs."""

import hashlib
import json
import subprocess
from collections import Counter
from pathlib import Path
from xml.etree import ElementTree

from dagster import AssetCheckSeverity, DagsterInstance, ExecuteInProcessResult

from pipeline.contract import contracts_dir
from pipeline.junit import junit
from pipeline.run_end import finish_run
from pipeline.settings import REPO_ROOT
from pipeline_tests.gate import run_gate
from pipeline_tests.test_defects import raw_pii_values


def cases(folder: Path) -> list[tuple[str, str, str, str]]:
    """(classname, name, outcome, message) of every testcase in the run's junit.xml."""
    found = []
    suites = ElementTree.parse(folder / "junit.xml").getroot().iter("testsuite")
    for case in (c for s in suites if s.get("name") != "tollgate.run" for c in s.iter("testcase")):
        float(case.get("time"))
        outcome = next((c for c in case if c.tag in ("failure", "skipped")), None)
        found.append(
            (
                case.get("classname"),
                case.get("name"),
                "passed" if outcome is None else outcome.tag,
                "" if outcome is None else outcome.get("message"),
            )
        )
    return found


def evaluated(result: ExecuteInProcessResult) -> Counter:
    return Counter(
        (".".join(e.asset_key.path), e.check_name) for e in result.get_asset_check_evaluations()
    )


def test_clean_run_reports_every_check_with_its_sql_contracts_and_revision(
    isolated_data_dir, monkeypatch
):
    from pipeline import report as reports

    rebuilds = []
    real_rebuild = reports.rebuild
    monkeypatch.setattr(reports, "rebuild", lambda *a: rebuilds.append(a) or real_rebuild(*a))
    instance = DagsterInstance.ephemeral()
    result = run_gate(instance=instance)
    assert result.success
    folder = isolated_data_dir / "reports" / result.run_id
    # Check steps only append their results: a rebuild reads every result of the run so far
    # (10 s at 12,700 results), so the report is built once, when the run ends.
    assert rebuilds == [] and (folder / "results.jsonl").exists()
    assert not (folder / "junit.xml").exists()
    finish_run(instance, result.run_id, result.job_def)
    assert len(rebuilds) == 1
    found = cases(folder)
    assert evaluated(result) and Counter((c, n) for c, n, _, _ in found) == evaluated(result)
    assert {outcome for _, _, outcome, _ in found} == {"passed"}

    report = json.loads((folder / "report.json").read_text())
    assert report["run_id"] == result.run_id and report["job_name"] == result.job_def.name
    assert report["started_at"] <= report["updated_at"]
    hashes = {
        path.name: hashlib.sha256(path.read_bytes()).hexdigest()
        for path in contracts_dir().glob("*.yaml")
    }
    assert hashes and report["contract_sha256"] == hashes
    git = subprocess.run(
        ["git", "cat-file", "-t", report["git_revision"]], cwd=REPO_ROOT, capture_output=True
    )
    assert git.stdout.strip() == b"commit"

    checks = {(c["asset_key"], c["check_name"]): c for c in report["checks"]}
    assert len(checks) == len(report["checks"]) == report["totals"]["checks"]
    for evaluation in result.get_asset_check_evaluations():
        check = checks["/".join(evaluation.asset_key.path), evaluation.check_name]
        assert check["passed"] and check["severity"] == evaluation.severity.value
        assert check["description"] == evaluation.description
        assert check["attributed_seconds"] >= 0
        sql = evaluation.metadata.get("sql")
        if sql is None:
            assert check["sql"] is None
        else:
            assert f"```sql\n{check['sql']}\n```" == sql.value
    # A table's snapshot and profiling query are carried by its first result, as JUnit's time.
    first: dict[str, float] = {}
    for check in report["checks"]:
        if check["asset_key"].startswith("fivetran/"):
            first.setdefault(check["asset_key"], check["attributed_seconds"])
    assert len(first) == 6 and all(seconds > 0 for seconds in first.values())
    for table in ("payments/charges", "payments/customers", "crm/contacts", "crm/deals"):
        sql = checks[f"fivetran/{table}", "required_columns_are_not_null"]["sql"]
        audited = '"tollgate_audit"."' + table.replace("/", "__") + "__v"
        assert sql.startswith("SELECT") and audited in sql


def test_failed_checks_are_failures_in_the_folder_the_environment_names(
    tmp_path, monkeypatch, isolated_data_dir
):
    defects = frozenset({"null_ids", "raw_pii", "pii_in_free_text"})
    monkeypatch.setenv("TOLLGATE_SANDBOX_DEFECTS", ",".join(defects))
    monkeypatch.setenv("TOLLGATE_REPORTS_DIR", str(tmp_path / "evidence"))
    instance = DagsterInstance.ephemeral()
    result = run_gate(instance=instance)
    assert not result.success
    # execute_in_process replaces tollgate's executor, so the in-process caller ends the run.
    finish_run(instance, result.run_id, result.job_def)
    assert [p.name for p in (tmp_path / "evidence").iterdir()] == [result.run_id]
    assert not (isolated_data_dir / "reports").exists()
    folder = tmp_path / "evidence" / result.run_id
    found = cases(folder)
    assert Counter((c, n) for c, n, _, _ in found) == evaluated(result)

    failed = {
        (".".join(e.asset_key.path), e.check_name): (e.severity, e.description)
        for e in result.get_asset_check_evaluations()
        if not e.passed
    }
    assert ("fivetran.crm.deals", "required_columns_are_not_null") in failed
    outcomes = {(c, n): (outcome, message) for c, n, outcome, message in found}
    for key, (outcome, message) in outcomes.items():
        if key not in failed:
            assert outcome == "passed", key
        elif failed[key][0] == AssetCheckSeverity.ERROR:
            assert (outcome, message) == ("failure", failed[key][1]), key
        else:
            assert outcome == "skipped" and failed[key][1] in message, key
    report = json.loads((folder / "report.json").read_text())
    assert report["run_id"] == result.run_id
    assert report["totals"]["failed"] == len(failed)
    assert {
        (c["asset_key"].replace("/", "."), c["check_name"])
        for c in report["checks"]
        if not c["passed"]
    } == set(failed)

    summary = report["summary"]
    assert summary["exit_code"].startswith("1: ") and not summary["success"]
    blocking = {
        (c["asset_key"], c["check_name"]): c["reason"]
        for c in summary["failed_checks"]
        if c["blocking"]
    }
    assert blocking[("fivetran/crm/deals", "required_columns_are_not_null")] == (
        "id: 12 of 4000 rows null"
    )
    assert {c["owner"] for c in summary["failed_checks"]} == {
        "team:revops-data",
        "team:payments-data",
    }
    held = {h["asset_key"]: h["held_back_by"] for h in summary["held_back"]}
    # A connector's tables are checked in one step, so a failing table holds back the publish
    # of its whole connector in this run; every model and refresh reads one of them.
    assert set(held) == {
        *(f"published/crm/{table}" for table in ("companies", "contacts", "deals")),
        *(f"published/payments/{table}" for table in ("customers", "charges", "invoices")),
        *(f"lookml/{model}" for model in ("crm", "payments")),
        *(f"looker/{name}" for name in ("crm_etl", "payments_etl", "revenue_by_customer")),
    }
    assert held["looker/revenue_by_customer"] == [
        "fivetran/payments/charges required_columns_are_not_null"
    ]
    assert held["published/payments/customers"] == held["looker/revenue_by_customer"]
    run_suite = next(
        s
        for s in ElementTree.parse(folder / "junit.xml").iter("testsuite")
        if s.get("name") == "tollgate.run"
    )
    assert {
        (case.get("classname"), case.find("skipped").get("message"))
        for case in run_suite.iter("testcase")
    } == {
        (key.replace("/", "."), f"held back by checks: {', '.join(by)}") for key, by in held.items()
    }
    assert instance.get_run_by_id(result.run_id).tags["tollgate/held_back"] == "11"

    written = " ".join(path.read_text() for path in folder.iterdir() if path.suffix != ".lock")
    assert "[email " in written  # the failing samples are there, redacted
    assert not {value for value in raw_pii_values(defects) if value in written}


def test_failed_warn_checks_are_skipped_and_error_checks_fail():
    record = {
        "asset_key": "fivetran/crm/deals",
        "metadata": {"row_count": 3},
        "sql": "SELECT 1",
        "attributed_seconds": 0.25,
    }
    records = [
        {**record, "check_name": "a", "passed": True, "severity": "ERROR", "description": "ok"},
        {**record, "check_name": "b", "passed": False, "severity": "ERROR", "description": "x\x01"},
        {**record, "check_name": "c", "passed": False, "severity": "WARN", "description": "late"},
    ]
    root = ElementTree.fromstring(junit(records))
    (suite,) = root.iter("testsuite")
    assert (suite.get("name"), suite.get("tests"), suite.get("failures")) == (
        "fivetran.crm.deals",
        "3",
        "1",
    )
    assert (suite.get("skipped"), suite.get("time")) == ("1", "0.750")
    a, b, c = suite.iter("testcase")
    assert list(a) == []
    # The three rules share one profiling query: the suite stores it once, no testcase repeats it.
    assert [out.text for out in suite.iter("system-out")] == ["SELECT 1"]
    assert b.find("failure").get("message") == "x\ufffd"
    assert "late" in c.find("skipped").get("message") and c.find("failure") is None
