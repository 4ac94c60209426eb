"""The end-of-run summary: what failed, what was held back by it, and what the exit code means."""

import re
from typing import TYPE_CHECKING, Any

from dagster import AssetCheckKey, AssetKey, DagsterEventType, DagsterInstance

if TYPE_CHECKING:
    from dagster._core.definitions.assets.graph.base_asset_graph import BaseAssetGraph

CHECK_FAILED = "DagsterAssetCheckFailedError"  # how Dagster fails a step on a blocking check
_OWNER_SUFFIX = re.compile(r"\s*\(owner: [^)]*\)\s*$")


def summarize(instance: DagsterInstance, run_id: str, graph: "BaseAssetGraph") -> dict[str, Any]:
    """Failed checks, held-back assets and failed steps of a run, read from its event log."""
    planned, done, checks, failed_steps = set(), set(), [], []
    for entry in instance.all_logs(
        run_id,
        of_type={
            DagsterEventType.ASSET_MATERIALIZATION_PLANNED,
            DagsterEventType.ASSET_MATERIALIZATION,
            DagsterEventType.ASSET_CHECK_EVALUATION,
            DagsterEventType.STEP_FAILURE,
        },
    ):
        event = entry.dagster_event
        if event.event_type == DagsterEventType.ASSET_MATERIALIZATION_PLANNED:
            planned.add(event.asset_key)
        elif event.event_type == DagsterEventType.ASSET_MATERIALIZATION:
            done.add(event.asset_key)
        elif event.event_type == DagsterEventType.ASSET_CHECK_EVALUATION:
            checks.append(event.event_specific_data)
        else:
            error = event.event_specific_data.error
            if error is None or error.cls_name != CHECK_FAILED:
                reason = one_line(error.message) if error else "no error recorded"
                failed_steps.append({"step": event.step_key, "error": reason})
    failed = [_failed_check(evaluation, graph) for evaluation in checks if not evaluation.passed]
    blocking = {(c["asset_key"], c["check_name"]): c for c in failed if c["blocking"]}
    # A failed blocking check fails its whole step: it holds back what reads any asset checked there.
    checked_with = {(a, c): _checked_together(graph, a, c) for a, c in blocking}
    held_back = []
    ancestors: dict[AssetKey, set[str]] = {}  # a step's assets share them: each walked once
    for key in sorted(planned - done, key=lambda k: k.to_user_string()):
        upstream: set[str] = set()
        for together in _in_step(graph, key, planned):
            if together not in ancestors:
                found = graph.get_ancestor_asset_keys(together)
                ancestors[together] = {k.to_user_string() for k in found}
            upstream |= ancestors[together]
        by = sorted(f"{a} {c}" for a, c in blocking if checked_with[(a, c)] & upstream)
        if by:
            held_back.append({"asset_key": key.to_user_string(), "held_back_by": by})
    return {
        "success": not failed_steps and not blocking,
        "failed_checks": failed,
        "held_back": held_back,
        "failed_steps": failed_steps,
        "exit_code": exit_code_meaning(bool(blocking), failed_steps, len(held_back)),
    }


def _in_step(graph: "BaseAssetGraph", key: AssetKey, planned: set[AssetKey]) -> set[AssetKey]:
    """The planned assets materialized in the same step as this one (itself if unknown): a failure
    upstream of any of them skips the step."""
    if key not in graph.materializable_asset_keys or not hasattr(graph, "assets_def_for_key"):
        return {key}
    return {key, *(set(graph.assets_def_for_key(key).keys) & planned)}


def _checked_together(graph: "BaseAssetGraph", asset: str, check: str) -> set[str]:
    """The assets whose checks run in the same step as this check (itself if unknown)."""
    key = AssetCheckKey(AssetKey.from_user_string(asset), check)
    if key not in graph.asset_check_keys or not hasattr(graph, "assets_def_for_key"):
        return {asset}
    return {k.asset_key.to_user_string() for k in graph.assets_def_for_key(key).check_keys}


def _failed_check(evaluation: Any, graph: "BaseAssetGraph") -> dict[str, Any]:
    key = AssetCheckKey(evaluation.asset_key, evaluation.check_name)
    spec = graph.get_check_spec(key) if key in graph.asset_check_keys else None
    owner = evaluation.metadata.get("owner")
    return {
        "asset_key": evaluation.asset_key.to_user_string(),
        "check_name": evaluation.check_name,
        "severity": evaluation.severity.value,
        "blocking": bool(spec and spec.blocking) and evaluation.severity.value == "ERROR",
        "owner": owner.value if owner is not None else _owners(graph, evaluation.asset_key),
        "reason": _OWNER_SUFFIX.sub("", one_line(evaluation.description or "failed")),
    }


def _owners(graph: "BaseAssetGraph", key: AssetKey) -> str | None:
    owners = graph.get(key).owners if graph.has(key) else []
    return ", ".join(owners) or None


def exit_code_meaning(blocked: bool, failed_steps: list[dict[str, Any]], held: int) -> str:
    if not blocked and not failed_steps:
        return (
            "0: every selected step succeeded; every blocking check passed and nothing was held "
            "back (failed WARN checks, if listed, never block)."
        )
    reasons = []
    if blocked:
        reasons.append(f"a blocking (ERROR) check failed and {held} asset(s) were held back")
    if failed_steps:
        reasons.append(f"{len(failed_steps)} step(s) failed (see failed steps)")
    return f"1: {'; '.join(reasons)}."


def one_line(text: str, limit: int = 240) -> str:
    line = " ".join(text.strip().splitlines()[0].split()) if text.strip() else ""
    return line if len(line) <= limit else line[: limit - 1] + "…"


def as_text(summary: dict[str, Any]) -> str:
    """The summary as CLI output."""
    lines = [f"tollgate run summary: {'PASSED' if summary['success'] else 'FAILED'}"]
    failed = summary["failed_checks"]
    lines.append(f"Failed checks ({len(failed)}):" if failed else "Failed checks: none")
    for c in failed:
        kind = "ERROR, blocking" if c["blocking"] else f"{c['severity']}, not blocking"
        lines.append(f"  {c['asset_key']} {c['check_name']} ({kind}; owner {c['owner']})")
        lines.append(f"    {c['reason']}")
    held = summary["held_back"]
    lines.append(f"Held back by checks ({len(held)}):" if held else "Held back by checks: none")
    lines += [f"  {h['asset_key']} by {', '.join(h['held_back_by'])}" for h in held]
    for step in summary["failed_steps"]:
        lines.append(f"Failed step {step['step']}: {step['error']}")
    lines.append(f"Exit code {summary['exit_code']}")
    return "\n".join(lines)


def as_markdown(summary: dict[str, Any]) -> str:
    """The summary for a CI job summary page ($GITHUB_STEP_SUMMARY)."""
    cell = lambda text: str(text).replace("|", "\\|")  # noqa: E731
    out = [f"### tollgate: {'passed' if summary['success'] else 'failed'}", ""]
    if summary["failed_checks"]:
        out += ["| table | rule | severity | owner | reason |", "|---|---|---|---|---|"]
        out += [
            f"| `{c['asset_key']}` | `{c['check_name']}` | {c['severity']}"
            f"{', blocking' if c['blocking'] else ''} | {cell(c['owner'])} | {cell(c['reason'])} |"
            for c in summary["failed_checks"]
        ]
        out.append("")
    if summary["held_back"]:
        out += ["| held back by checks | by |", "|---|---|"]
        out += [
            f"| `{h['asset_key']}` | {cell(', '.join(h['held_back_by']))} |"
            for h in summary["held_back"]
        ]
        out.append("")
    out += [f"- failed step `{s['step']}`: {cell(s['error'])}" for s in summary["failed_steps"]]
    out.append(f"Exit code {summary['exit_code']}")
    return "\n".join(out) + "\n"
