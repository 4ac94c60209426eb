"""JUnit XML for CI test panels from recorded check results: a testsuite per asset."""

import json
import re
from typing import Any
from xml.etree import ElementTree

_NOT_XML = re.compile(r"[\x00-\x08\x0b\x0c\x0e-\x1f]")


def junit(records: list[dict[str, Any]], summary: dict[str, Any] | None = None) -> bytes:
    """One testsuite per asset, one testcase per check result; failed WARN checks are skipped."""
    root = ElementTree.Element("testsuites", name="tollgate")
    suites: dict[str, list[dict[str, Any]]] = {}
    for record in records:
        suites.setdefault(record["asset_key"].replace("/", "."), []).append(record)
    for classname, cases in sorted(suites.items()):
        suite = ElementTree.SubElement(root, "testsuite", name=classname)
        for record in cases:
            case = ElementTree.SubElement(
                suite,
                "testcase",
                classname=classname,
                name=record["check_name"],
                time=f"{record['attributed_seconds']:.3f}",
            )
            text = _xml(record["description"] or "")
            if not record["passed"] and record["severity"] == "ERROR":
                failure = ElementTree.SubElement(case, "failure", message=text, type="ERROR")
                failure.text = _xml(json.dumps(record["metadata"], indent=1))
            elif not record["passed"]:  # listed apart from passes, not red: WARN never blocks
                ElementTree.SubElement(case, "skipped", message=_xml(f"WARN, not blocking: {text}"))
        # A table's rules share one profiling query: each distinct statement is stored once.
        statements = list(dict.fromkeys(r["sql"] for r in cases if r["sql"]))
        if statements:
            ElementTree.SubElement(suite, "system-out").text = _xml(";\n\n".join(statements))
        _count(suite, cases)
    _count(root, records)
    if summary is not None:
        run = _summary_suite(root, summary)
        for name in ("tests", "skipped", "errors"):
            root.set(name, str(int(root.get(name)) + int(run.get(name))))
    return ElementTree.tostring(root, encoding="utf-8", xml_declaration=True)


def _summary_suite(root: ElementTree.Element, summary: dict[str, Any]) -> ElementTree.Element:
    """The run summary: held-back assets as skipped testcases, the exit code as a property."""
    suite = ElementTree.SubElement(root, "testsuite", name="tollgate.run")
    properties = ElementTree.SubElement(suite, "properties")
    for name in ("run_id", "environment", "exit_code"):
        ElementTree.SubElement(properties, "property", name=name, value=_xml(str(summary[name])))
    for held in summary["held_back"]:
        classname = held["asset_key"].replace("/", ".")
        case = ElementTree.SubElement(
            suite, "testcase", classname=classname, name="held_back", time="0.000"
        )
        reason = f"held back by checks: {', '.join(held['held_back_by'])}"
        ElementTree.SubElement(case, "skipped", message=_xml(reason))
    for step in summary["failed_steps"]:
        case = ElementTree.SubElement(
            suite, "testcase", classname="tollgate.run", name=step["step"]
        )
        ElementTree.SubElement(case, "error", message=_xml(step["error"]), type="step failure")
    n_held, n_steps = len(summary["held_back"]), len(summary["failed_steps"])
    suite.set("tests", str(n_held + n_steps))
    suite.set("failures", "0")
    suite.set("skipped", str(n_held))
    suite.set("errors", str(n_steps))
    suite.set("time", "0.000")
    return suite


def _count(element: ElementTree.Element, records: list[dict[str, Any]]) -> None:
    element.set("tests", str(len(records)))
    element.set("failures", str(sum(not r["passed"] and r["severity"] == "ERROR" for r in records)))
    element.set("skipped", str(sum(not r["passed"] and r["severity"] != "ERROR" for r in records)))
    element.set("errors", "0")
    element.set("time", f"{sum(r['attributed_seconds'] for r in records):.3f}")


def _xml(text: str) -> str:
    return _NOT_XML.sub("\ufffd", text)
