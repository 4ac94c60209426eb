"""JUnit XML for CI test panels from recorded check results: a testsuite per asset."""

import json
import re
from typing import Any
from xml.etree import ElementTree

_NOT_XML = re.compile(r"[\x00-\x08\x0b\x0c\x0e-\x1f]")


def junit(records: list[dict[str, Any]]) -> bytes:
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
            if record["sql"]:
                ElementTree.SubElement(case, "system-out").text = _xml(record["sql"])
        _count(suite, cases)
    _count(root, records)
    return ElementTree.tostring(root, encoding="utf-8", xml_declaration=True)


def _count(element: ElementTree.Element, records: list[dict[str, Any]]) -> None:
    element.set("tests", str(len(records)))
    element.set("failures", str(sum(not r["passed"] and r["severity"] == "ERROR" for r in records)))
    element.set("skipped", str(sum(not r["passed"] and r["severity"] != "ERROR" for r in records)))
    element.set("errors", "0")
    element.set("time", f"{sum(r['attributed_seconds'] for r in records):.3f}")


def _xml(text: str) -> str:
    return _NOT_XML.sub("\ufffd", text)
