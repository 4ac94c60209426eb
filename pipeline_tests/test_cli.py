"""Scope: `dagster asset materialize` as CI runs it — real CLI, multiprocess executor, exit codes."""

import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest
from dagster import AssetKey, DagsterInstance

from pipeline.sandbox import fivetran_api, looker_api
from pipeline.settings import REPO_ROOT
from pipeline_tests.gate import LOOKER_KEYS

DAGSTER = Path(sys.executable).parent / "dagster"


def start(home: Path, defects: str = "", select: str = "*") -> subprocess.Popen:
    home.mkdir(exist_ok=True)
    shutil.copy(REPO_ROOT / "dagster.yaml", home / "dagster.yaml")
    env = {**os.environ, "DAGSTER_HOME": str(home), "TOLLGATE_SANDBOX_DEFECTS": defects}
    return subprocess.Popen(
        [str(DAGSTER), "asset", "materialize", "-m", "pipeline", "--select", select],
        cwd=home,  # dagster.yaml's relative storage paths land under the test's own folder
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
    )


def finish(process: subprocess.Popen) -> tuple[int, str]:
    output, _ = process.communicate(timeout=1200)
    return process.returncode, output


def materialize(home: Path, defects: str = "", select: str = "*") -> subprocess.CompletedProcess:
    code, output = finish(start(home, defects, select))
    return subprocess.CompletedProcess([], code, output, "")


def materialized(home: Path, keys: set[AssetKey]) -> set[AssetKey]:
    with DagsterInstance.from_config(str(home)) as instance:
        return {key for key in keys if instance.get_latest_materialization_event(key)}


@pytest.mark.parametrize("defects", ["", "null_ids"])
def test_cli_exit_code_follows_blocking_checks(tmp_path, monkeypatch, defects):
    home = tmp_path / "dagster_home"
    run = materialize(home, defects)
    output = run.stdout + run.stderr
    monkeypatch.chdir(home)  # read the run's storage through the same relative paths
    fivetran = {
        AssetKey(["fivetran", "payments", "charges"]),
        AssetKey(["fivetran", "crm", "deals"]),
    }
    assert materialized(home, fivetran) == fivetran, output[-3000:]
    # Definitions are built by the CLI and once more by the executor's forkserver, which every
    # step forks from; a step that rebuilt them would list the Fivetran groups again.
    listings = [r for r in fivetran_api.requests_seen() if r["path"] == "/v1/groups"]
    assert len(listings) == 2, f"definitions were built {len(listings)} times, not twice"
    if defects:
        assert run.returncode != 0, output[-3000:]
        assert "required_columns_are_not_null" in output
        assert materialized(home, LOOKER_KEYS) == set()
        # Selecting only the Looker refreshes afterwards does not open the gate.
        again = materialize(home, defects, select="key:looker/*")
        assert again.returncode != 0, again.stdout[-3000:]
        assert "Refusing to refresh looker/payments_etl" in again.stdout
        assert "fivetran/payments/charges required_columns_are_not_null failed" in again.stdout
        assert materialized(home, LOOKER_KEYS) == set()
        assert not [r for r in looker_api.requests_seen() if r["method"] == "PATCH"]
    else:
        assert run.returncode == 0, output[-3000:]
        assert materialized(home, LOOKER_KEYS) == LOOKER_KEYS


def test_overlapping_cli_runs_share_the_warehouse_safely(tmp_path, monkeypatch):
    """Two gate runs at once (a schedule overlapping a manual run), each multiprocess."""
    homes = [tmp_path / "first", tmp_path / "second"]
    runs = [start(home) for home in homes]
    results = [finish(run) for run in runs]
    for code, output in results:
        assert code == 0, output[-3000:]
        assert "Could not set lock" not in output  # DuckDB's error when two processes collide
    for home in homes:
        monkeypatch.chdir(home)
        assert materialized(home, LOOKER_KEYS) == LOOKER_KEYS
