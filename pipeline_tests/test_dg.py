"""Scope: `dg`, Dagster's recommended CLI, finds the project from pyproject.toml's [tool.dg].

`dg launch` runs in test_cli.py (it is `dagster asset materialize` underneath).
"""

import json
import subprocess
import sys
from pathlib import Path

from pipeline.settings import REPO_ROOT

DG = Path(sys.executable).parent / "dg"


def dg(*args: str) -> subprocess.CompletedProcess:
    return subprocess.run(
        [str(DG), *args],
        cwd=REPO_ROOT,  # no module flag: the project settings must be enough
        capture_output=True,
        text=True,
        timeout=600,
    )


def test_dg_checks_and_lists_the_definitions():
    checked = dg("check", "defs")
    assert checked.returncode == 0, checked.stdout + checked.stderr
    listed = dg("list", "defs", "--json")
    assert listed.returncode == 0, listed.stderr
    defs = json.loads(listed.stdout)
    assets = {asset["asset_key"] for asset in defs["assets"]}
    assert {"fivetran/payments/charges", "looker/revenue_by_customer"} <= assets
    assert "tollgate_gate_hourly" in {schedule["name"] for schedule in defs["schedules"]}
