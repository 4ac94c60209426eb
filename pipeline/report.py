"""Audit evidence: every check result of a run as JSON lines, rebuilt into JUnit XML and JSON."""

import hashlib
import json
import re
import subprocess
import time
from collections.abc import Iterator, Mapping
from datetime import UTC, datetime
from functools import cache
from pathlib import Path
from typing import Any

from dagster import (
    AssetCheckExecutionContext,
    AssetCheckResult,
    AssetExecutionContext,
    AssetKey,
    MetadataValue,
)

from pipeline.contract import contract_files, contracts_dir
from pipeline.junit import junit
from pipeline.locking import append_line, locked, read_lines, write_atomic
from pipeline.settings import REPO_ROOT, reports_dir

RESULTS, JUNIT, REPORT, SUMMARY = "results.jsonl", "junit.xml", "report.json", "summary.json"
_FENCED = re.compile(r"\A```\w*\n(.*)\n```\Z", re.DOTALL)
# A step of standalone checks, or of an asset with its checks (lookml/<model>).
StepContext = AssetCheckExecutionContext | AssetExecutionContext


def run_folder(run_id: str) -> Path:
    path = reports_dir() / run_id
    path.mkdir(parents=True, exist_ok=True)
    return path


def recorded(
    context: StepContext,
    results: Iterator[AssetCheckResult],
    started: float | None = None,
    spent: Mapping[AssetKey, float] | None = None,
) -> Iterator[AssetCheckResult]:
    """Pass the step's results through, recording each as it comes (the run's end reports them).

    `spent`, when the step judges tables before handing over their results: each asset's seconds
    of work, filled in before its first result comes, and attributed to that result."""
    clock = time.monotonic() if started is None else started
    attributed: set[AssetKey] = set()
    folder = run_folder(context.run.run_id)
    specs = context.op_execution_context.assets_def.check_specs
    blocking = {(spec.asset_key, spec.name): spec.blocking for spec in specs}
    run_started = _run_started(context)
    seen: list[dict[str, Any]] = []
    mark = clock
    # `mark` restarts when Dagster hands control back, so its handling of events is not timed.
    # junit.xml and report.json are rebuilt once, when the run ends (run_end.finish_run): a
    # rebuild reads every result so far, 10 s at 12,700 results, and each step did it.
    for result in results:
        if spent is None:
            seconds = time.monotonic() - mark
        else:
            seconds = 0.0 if result.asset_key in attributed else spent.get(result.asset_key, 0.0)
            attributed.add(result.asset_key)
        record = _record(context, result, seconds, time.monotonic() - clock)
        record["blocking"] = blocking.get((result.asset_key, result.check_name))
        record["run_started_at"] = run_started
        append_line(folder / RESULTS, record)
        seen.append(record)
        yield result
        mark = time.monotonic()
    failed = [r for r in seen if not r["passed"]]
    for r in failed:  # the reason, at a level people read (Dagster logs evaluations at DEBUG)
        context.log.warning(
            f"{r['asset_key']} {r['check_name']} FAILED ({r['severity']}"
            f"{', blocking' if r['blocking'] else ', not blocking'}): {r['description']}"
        )
    context.log.info(
        f"{', '.join(sorted({r['asset_key'] for r in seen})) or context.op_def.name}: "
        f"{len(seen) - len(failed)} passed, {len(failed)} failed "
        f"({sum(1 for r in failed if r['blocking'])} blocking) "
        f"in {time.monotonic() - clock:.1f}s; report {folder / JUNIT}"
    )


def rebuild(run_id: str, job_name: str) -> None:
    """Rewrite the run's junit.xml and report.json from every result recorded so far."""
    folder = run_folder(run_id)
    with locked(folder / REPORT):
        records = read_lines(folder / RESULTS)
        summary = json.loads(read_text(folder / SUMMARY) or "null")
        write_atomic(folder / JUNIT, junit(records, summary))
        write_atomic(
            folder / REPORT,
            json.dumps(report(run_id, job_name, records, summary), indent=1).encode(),
        )


def read_text(path: Path) -> str | None:
    return path.read_text(encoding="utf-8") if path.exists() else None


def report(
    run_id: str,
    job_name: str,
    records: list[dict[str, Any]],
    summary: dict[str, Any] | None = None,
) -> dict[str, Any]:
    """The run's JSON evidence: what ran, on which code and contracts, with which results."""
    started = [r["run_started_at"] for r in records if r.get("run_started_at")]
    return {
        "run_id": run_id,
        "job_name": job_name,
        "started_at": min(started) if started else None,
        "updated_at": _now(),
        "git_revision": git_revision(),
        "contracts_dir": str(contracts_dir()),
        "contract_sha256": contract_hashes(),
        "totals": {
            "checks": len(records),
            "passed": sum(1 for r in records if r["passed"]),
            "failed": sum(1 for r in records if not r["passed"]),
            "failed_error": sum(1 for r in records if not r["passed"] and r["severity"] == "ERROR"),
        },
        # Written when the run ends (pipeline/run_end.py); null while the run is still going.
        "summary": summary,
        "checks": [
            {k: v for k, v in r.items() if k not in ("run_id", "job_name")} for r in records
        ],
    }


def contract_hashes() -> dict[str, str]:
    """sha256 of every contract file, by file name."""
    return {path.name: hashlib.sha256(path.read_bytes()).hexdigest() for path in contract_files()}


@cache
def git_revision() -> str | None:
    """HEAD of the repo this code runs from, or None outside a git checkout."""
    try:
        done = subprocess.run(
            ["git", "rev-parse", "HEAD"], cwd=REPO_ROOT, capture_output=True, text=True, timeout=10
        )
    except (OSError, subprocess.SubprocessError):
        return None
    return (done.stdout.strip() or None) if done.returncode == 0 else None


def _record(
    context: StepContext, result: AssetCheckResult, seconds: float, elapsed: float
) -> dict[str, Any]:
    metadata = {name: _plain(value) for name, value in (result.metadata or {}).items()}
    sql = metadata.pop("sql", None)
    return {
        "run_id": context.run.run_id,
        "job_name": context.run.job_name,
        "step": context.op_def.name,
        "asset_key": "/".join(result.asset_key.path),
        "check_name": result.check_name,
        "passed": result.passed,
        "severity": result.severity.value,
        "description": result.description,
        "owner": metadata.get("owner"),
        "sql": _FENCED.sub(r"\1", sql) if isinstance(sql, str) else None,
        "metadata": metadata,
        # Wall time from the previous result of the same step, or the asset's share of the
        # step's work (the first result of a table carries its snapshot and profiling query);
        # and since the evaluation began.
        "attributed_seconds": round(seconds, 4),
        "evaluation_elapsed_seconds": round(elapsed, 4),
        "recorded_at": _now(),
    }


def _plain(value: Any) -> Any:
    """A metadata value as JSON (markdown and text as strings, JSON as itself, others as str)."""
    raw = value.value if isinstance(value, MetadataValue) else value
    return json.loads(json.dumps(raw, default=str))


def _run_started(context: StepContext) -> str | None:
    try:
        start = context.instance.get_run_record_by_id(context.run.run_id).start_time
    except Exception:  # a report without a start time beats a failed check step
        return None
    return datetime.fromtimestamp(start, UTC).isoformat() if start else None


def _now() -> str:
    return datetime.now(UTC).isoformat()
