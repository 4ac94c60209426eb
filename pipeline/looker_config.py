"""looker_refreshes.yaml, read strictly: an unknown key (with a "did you mean") or a wrong type is
an error naming the file and the place, never a setting silently dropped."""

import types
import typing
from collections import Counter
from functools import cache
from pathlib import Path
from typing import Any

import pydantic
import yaml

from pipeline.contract_schema import suggest

_LOADER = getattr(yaml, "CSafeLoader", yaml.SafeLoader)  # libyaml when installed


class _Strict(pydantic.BaseModel):
    model_config = pydantic.ConfigDict(extra="forbid", frozen=True, strict=True)


class Datagroup(_Strict):
    model: str
    name: str


class Pdt(_Strict):
    model: str
    view: str


class RefreshEntry(_Strict):
    name: str
    description: str = ""
    datagroup: Datagroup | None = None
    pdt: Pdt | None = None
    reads: list[str] = []  # tables the LookML does not show; never removes one it reads


class Connection(_Strict):
    """A Looker connection: the default schema of unqualified table names, and whether it is the
    warehouse tollgate gates (false: another database, whose models are not judged)."""

    default_schema: str | None = None
    warehouse: bool = True


class LookerConfig(_Strict):
    refreshes: list[RefreshEntry]
    connections: dict[str, Connection | None] = {}
    checks: dict[str, str] = {}  # severity of the adjustable Looker checks

    def connection(self, name: str) -> Connection | None:
        """How the file declares connection `name`; None when it does not name it."""
        if name not in self.connections:
            return None
        return self.connections[name] or Connection()


def load_config(path: Path) -> LookerConfig:
    """The file at `path`, validated; ValueError naming the file and the key on any problem."""
    stat = path.stat()
    return _load(path, stat.st_mtime_ns, stat.st_size)


@cache  # read by the refreshes, the Looker checks' severities and the models beside them
def _load(path: Path, modified: int, size: int) -> LookerConfig:
    try:
        raw = yaml.load(path.read_text(encoding="utf-8"), Loader=_LOADER)
    except yaml.YAMLError as error:
        raise ValueError(f"{path}: is not valid YAML: {error}") from None
    try:
        config = LookerConfig.model_validate(raw)
    except pydantic.ValidationError as error:
        raise ValueError(f"{path}: {_problem(raw, error.errors())}") from None
    twice = sorted(name for name, n in Counter(r.name for r in config.refreshes).items() if n > 1)
    if twice:
        raise ValueError(f"{path}: refresh {twice[0]!r} is listed twice")
    return config


def _problem(raw: object, errors: list[dict]) -> str:
    """The first problem, an unknown key before what it may have left missing."""
    error = min(errors, key=lambda e: e["type"] != "extra_forbidden")
    loc = error["loc"]
    unknown = error["type"] == "extra_forbidden"
    where = _where(raw, loc[:-1] if unknown else loc)
    if not unknown:
        return f"{where}: {error['msg']}"
    model = _model_at(loc[:-1])
    hint = suggest(str(loc[-1]), model.model_fields) if model else None
    return f"unknown key `{loc[-1]}` at {where}" + (f" (did you mean `{hint}`?)" if hint else "")


def _where(raw: object, loc: tuple) -> str:
    where = ".".join(str(part) for part in loc) or "the top level"
    if loc[:1] == ("refreshes",) and len(loc) > 1 and isinstance(loc[1], int):
        entry = raw["refreshes"][loc[1]] if isinstance(raw, dict) else None
        name = entry.get("name") if isinstance(entry, dict) else None
        where += f" (refresh {name!r})" if isinstance(name, str) else ""
    return where


def _model_at(loc: tuple) -> type[_Strict] | None:
    """The model whose fields the key at `loc` sits among."""
    annotation: Any = LookerConfig
    for part in loc:
        annotation = _unwrap(annotation)
        if typing.get_origin(annotation) in (list, dict):  # part is an index or a mapping key
            annotation = typing.get_args(annotation)[-1]
        elif _is_model(annotation) and part in annotation.model_fields:
            annotation = annotation.model_fields[part].annotation
        else:
            return None
    annotation = _unwrap(annotation)
    return annotation if _is_model(annotation) else None


def _unwrap(annotation: Any) -> Any:
    """`X | None` -> X."""
    if isinstance(annotation, types.UnionType) or typing.get_origin(annotation) is typing.Union:
        return next(a for a in typing.get_args(annotation) if a is not type(None))
    return annotation


def _is_model(annotation: Any) -> bool:
    return isinstance(annotation, type) and issubclass(annotation, _Strict)
