"""What every rule family provides: the metrics it needs and a verdict on them."""

from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import Any

from sqlglot import exp

from pipeline.contract import TableContract

# column name -> warehouse type, as the table exists right now
Columns = Mapping[str, str]


@dataclass(frozen=True)
class Verdict:
    passed: bool
    summary: str
    metadata: dict[str, Any] = field(default_factory=dict)


@dataclass(frozen=True)
class Rule:
    check_name: str
    description: str
    applies: Callable[[TableContract], bool]
    metrics: Callable[[TableContract, Columns, str], dict[str, exp.Expression]]
    judge: Callable[[TableContract, Columns, Mapping[str, Any]], Verdict]
    blocking: bool = True
