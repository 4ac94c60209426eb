"""TOLLGATE_SANDBOX_SCALE=NxM: the sandbox serves N generated connectors of M small tables each.

Everything follows from N and M alone (rows, contracts, LookML, Looker refreshes), so every run and
every process sees the same account. The contracts and LookML are written once into the data
folder and read from there while the switch is on.
"""

import os
import re
import shutil
import textwrap
from functools import cache
from pathlib import Path
from typing import TYPE_CHECKING

from pipeline.locking import locked
from pipeline.settings import data_dir

if TYPE_CHECKING:
    import pandas as pd

VARIABLE = "TOLLGATE_SANDBOX_SCALE"
ROWS = 1_000  # per table: small, so 1,000 tables fit on disk and in a benchmark's time
CONNECTORS_PER_GROUP = 10  # Fivetran groups (destinations) hold the connectors in this many
MAX_TABLES = 100_000
COLUMNS = {
    "id": "BIGINT",
    "account_id": "BIGINT",
    "email": "VARCHAR",
    "amount": "DECIMAL(18,2)",
    "status": "VARCHAR",
    "note": "VARCHAR",
    "created_at": "TIMESTAMP",
}
STATUSES = ["active", "pending", "closed", "refunded"]
NOTES = ["renewal", "upgrade requested", "left a voicemail", "invoice sent", None]


def requested() -> tuple[int, int] | None:
    """(connectors, tables per connector) from TOLLGATE_SANDBOX_SCALE, None when it is unset."""
    raw = os.environ.get(VARIABLE, "").strip()
    if not raw:
        return None
    match = re.fullmatch(r"(\d+)\s*x\s*(\d+)", raw)
    if not match or int(match[1]) < 1 or int(match[2]) < 1:
        raise ValueError(f"{VARIABLE}={raw!r}: expected NxM with N, M >= 1, e.g. 100x10")
    n, m = int(match[1]), int(match[2])
    if n * m > MAX_TABLES:
        raise ValueError(f"{VARIABLE}={raw!r}: {n * m} tables, more than {MAX_TABLES}")
    return n, m


def connector(i: int) -> str:
    return f"scale_{i:04d}"


def table(j: int) -> str:
    return f"table_{j:03d}"


def group(i: int) -> str:
    return f"scale_group_{i // CONNECTORS_PER_GROUP:03d}"


def sources() -> list:
    """The generated connectors, or [] when the switch is off."""
    shape = requested()
    return _sources(*shape) if shape else []


@cache
def _sources(n: int, m: int) -> list:
    from functools import partial

    from pipeline.sandbox.sources import SandboxTable, Source

    tables = {
        table(j): SandboxTable(table(j), COLUMNS, hashed=frozenset({"email"})) for j in range(m)
    }
    return [
        Source(
            f"{connector(i)}_sandbox", connector(i), "scale", tables,
            read=partial(frames, i, m), group_id=group(i),
        )
        for i in range(n)
    ]  # fmt: skip


def frames(i: int, m: int) -> dict[str, "pd.DataFrame"]:
    """Connector i's M tables as the source holds them (emails raw); account_id points at table_000."""
    return {table(j): rows(i, j) for j in range(m)}


def rows(i: int, j: int) -> "pd.DataFrame":
    # Imported here, not at the top: contracts import this module, and every process that loads
    # the definitions would pay 0.6 s for pandas and numpy that only the sandbox's sync uses.
    import numpy as np
    import pandas as pd

    from pipeline.sandbox.sample_data import ANCHOR, SEED, pick

    gen = np.random.default_rng([SEED, 14, i, j])
    ids = np.arange(1, ROWS + 1)
    return pd.DataFrame(
        {
            "id": ids,
            "account_id": gen.integers(1, ROWS + 1, size=ROWS),
            "email": [f"user{i}.{j}.{k}@example.com" for k in ids],
            "amount": (gen.integers(100, 1_000_000, size=ROWS) / 100).round(2),
            "status": pick(gen, STATUSES, ROWS),
            "note": pick(gen, NOTES, ROWS),
            "created_at": ANCHOR
            - gen.integers(0, 365 * 86_400, size=ROWS).astype("timedelta64[s]"),
        }
    )


def generated(kind: str) -> Path | None:
    """The generated `contracts` folder, `lookml` folder or `looker_refreshes.yaml`; None when off."""
    shape = requested()
    if shape is None:
        return None
    return _generate(*shape) / kind


def _generate(n: int, m: int) -> Path:
    root = data_dir() / "scale" / f"{n}x{m}"
    if (root / "complete").exists():
        return root
    root.parent.mkdir(parents=True, exist_ok=True)
    with locked(root):
        if (root / "complete").exists():
            return root
        shutil.rmtree(root, ignore_errors=True)
        for i in range(n):
            _write(root / "contracts" / f"{connector(i)}.yaml", contract_yaml(i, m))
            _write(root / "lookml" / f"{connector(i)}.model.lkml", model_lkml(i, m))
            for j in range(m):
                _write(
                    root / "lookml" / "views" / connector(i) / f"{table(j)}.view.lkml",
                    view_lkml(i, j),
                )
        _write(root / "lookml" / "manifest.lkml", 'project_name: "tollgate_scale"\n')
        _write(root / "looker_refreshes.yaml", refreshes_yaml(n))
        _write(root / "complete", "")
    return root


def _write(path: Path, text: str) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(text, encoding="utf-8")


def contract_yaml(i: int, m: int) -> str:
    tables = "".join(
        textwrap.dedent(f"""\
          - name: {table(j)}
            description: Generated table {j} of {connector(i)}.
            customProperties:
              - {{property: freshnessHours, value: 24}}
              - {{property: rowCount, value: {{min: 1, max: 1000000}}}}
            properties:
              - {{name: id, physicalType: BIGINT, primaryKey: true}}
              - name: account_id
                physicalType: BIGINT
                required: true
                relationships: [{{type: foreignKey, to: {table(0)}.id}}]
              - name: email
                physicalType: VARCHAR
                classification: email
                customProperties: [{{property: piiHandling, value: hashed}}]
              - {{name: amount, physicalType: "DECIMAL(18,2)", required: true}}
              - {{name: status, physicalType: VARCHAR, required: true}}
              - {{name: note, physicalType: VARCHAR}}
              - {{name: created_at, physicalType: TIMESTAMP, required: true}}
        """)
        for j in range(m)
    )
    header = textwrap.dedent(f"""\
        # Generated for {VARIABLE}: connector {i}, {m} tables.
        apiVersion: v3.0.2
        kind: DataContract
        id: {connector(i)}
        name: {connector(i)}
        version: 1.0.0
        status: active
        team: {{name: scale-team-{i % 7}}}
        customProperties:
          - {{property: fivetranConnectorId, value: {connector(i)}_sandbox}}
        schema:
    """)
    return header + tables


def model_lkml(i: int, m: int) -> str:
    name = connector(i)
    explores = "".join(
        f"explore: {name}__{table(j)} {{\n"
        f"  sql_always_where: NOT ${{{name}__{table(j)}.is_deleted}} ;;\n"
        f"}}\n"
        for j in range(m)
    )
    return (
        f'connection: "warehouse"\n'
        f'include: "/views/{name}/*.view.lkml"\n'
        f"datagroup: {name}_etl {{\n"
        f'  max_cache_age: "24 hours"\n'
        f"}}\n"
        f"persist_with: {name}_etl\n"
        f"{explores}"
    )


def view_lkml(i: int, j: int) -> str:
    return textwrap.dedent(f"""\
        view: {connector(i)}__{table(j)} {{
          sql_table_name: {connector(i)}_published.{table(j)} ;;
          dimension: is_deleted {{
            hidden: yes
            type: yesno
            sql: ${{TABLE}}._fivetran_deleted ;;
          }}
          dimension: id {{
            primary_key: yes
            type: number
            sql: ${{TABLE}}.id ;;
          }}
          dimension: status {{
            type: string
            sql: ${{TABLE}}.status ;;
          }}
          measure: total_amount {{
            type: sum
            sql: ${{TABLE}}.amount ;;
          }}
        }}
    """)


def refreshes_yaml(n: int) -> str:
    entries = "".join(
        f"  - name: {connector(i)}_etl\n"
        f"    description: Reset {connector(i)}_etl once {connector(i)}'s tables pass.\n"
        f"    datagroup: {{model: {connector(i)}, name: {connector(i)}_etl}}\n"
        for i in range(n)
    )
    return f"# Generated for {VARIABLE}.\nrefreshes:\n{entries}"
