"""Strict ODCS: every key known (with a "did you mean"), and the published JSON Schema satisfied."""

import copy
import difflib
import importlib.resources
import json
import types
import typing
from collections.abc import Iterator
from functools import cache
from importlib.metadata import version
from typing import Any

import jsonschema
import pydantic
from open_data_contract_standard.model import OpenDataContractStandard

from pipeline import load_cache

Path = tuple[str | int, ...]  # a location in the YAML: ("schema", 1, "properties", 0, "required")


class UnknownKey(ValueError):
    """A key no ODCS model and no tollgate customProperty defines."""

    def __init__(self, path: Path, key: str, known: typing.Iterable[str]):
        self.path, self.key = path, key
        self.suggestion = suggest(key, known)
        hint = f" (did you mean `{self.suggestion}`?)" if self.suggestion else ""
        super().__init__(f"unknown key `{key}` at {dotted(path) or 'the top level'}{hint}")


def suggest(word: str, known: typing.Iterable[str]) -> str | None:
    """The closest known spelling, case-insensitively (`primarykey` -> `primaryKey`)."""
    by_lower = {k.lower(): k for k in known}
    match = difflib.get_close_matches(word.lower(), list(by_lower), n=1, cutoff=0.6)
    return by_lower[match[0]] if match else None


def dotted(path: Path) -> str:
    return ".".join(str(part) for part in path)


def unknown_keys(raw: dict[str, Any]) -> Iterator[UnknownKey]:
    """Every key of the YAML that the ODCS pydantic models do not define, at every level."""
    yield from _walk(raw, OpenDataContractStandard, ())


def _walk(value: Any, annotation: Any, path: Path) -> Iterator[UnknownKey]:
    model = _model_in(annotation) if isinstance(value, dict) else None
    if model is not None:
        fields = _fields(model)
        for key, item in value.items():
            if key not in fields:
                yield UnknownKey((*path, key), str(key), fields)
            else:
                yield from _walk(item, fields[key], (*path, key))
    elif isinstance(value, list):
        item_type = _list_item(annotation)
        if item_type is not None:
            for i, item in enumerate(value):
                yield from _walk(item, item_type, (*path, i))


def _members(annotation: Any) -> tuple[Any, ...]:
    if typing.get_origin(annotation) in (typing.Union, types.UnionType):
        return typing.get_args(annotation)
    return (annotation,)


def _resolve(annotation: Any) -> Any:
    if isinstance(annotation, typing.ForwardRef | str):  # "SchemaProperty" in the ODCS models
        name = annotation if isinstance(annotation, str) else annotation.__forward_arg__
        import open_data_contract_standard.model as odcs

        return getattr(odcs, name)
    return annotation


@cache
def _fields(model: type[pydantic.BaseModel]) -> dict[str, Any]:
    return {(f.alias or name): f.annotation for name, f in model.model_fields.items()}


@cache
def _model_in(annotation: Any) -> type[pydantic.BaseModel] | None:
    for member in map(_resolve, _members(annotation)):
        if isinstance(member, type) and issubclass(member, pydantic.BaseModel):
            return member
    return None


@cache
def _list_item(annotation: Any) -> Any:
    for member in map(_resolve, _members(annotation)):
        if typing.get_origin(member) is list:
            return typing.get_args(member)[0]
    return None


@cache
def published_schema() -> dict[str, Any]:
    """ODCS's JSON Schema as the open-data-contract-standard package ships it, with one fix."""
    text = (importlib.resources.files("open_data_contract_standard") / "schema.json").read_text()
    schema = json.loads(text)
    _require_if_keys(schema)
    return schema


def _require_if_keys(schema: Any) -> None:
    # The published `if: {properties: {logicalType: {const: map}}}` has no `required`, so it
    # also holds for a property without logicalType and demands `map` of every column. Each
    # such `if` is meant to apply only when the key is present: say so.
    for node in _objects(schema):
        condition = node.get("if")
        for branch in [condition, *(condition or {}).get("anyOf", [])] if condition else []:
            if "properties" in branch and "required" not in branch:
                branch["required"] = list(branch["properties"])


def _objects(node: Any) -> Iterator[dict[str, Any]]:
    """Every JSON object in a parsed JSON document, outermost first."""
    if isinstance(node, dict):
        yield node
        children = list(node.values())
    else:
        children = node if isinstance(node, list) else []
    for child in children:
        yield from _objects(child)


def schema_error(raw: dict[str, Any]) -> jsonschema.ValidationError | None:
    """The most relevant violation of ODCS's published JSON Schema, or None."""
    # A pass is kept under a digest of the document itself (its repr tells str, int, float, bool
    # and None apart), the schema and the validator, so only this very document skips the walk.
    digest = load_cache.key(_validator_fingerprint(), repr(raw))
    if load_cache.get("odcs_valid", digest) is True:
        return None
    error = jsonschema.exceptions.best_match(_validator().iter_errors(raw))
    if error is None:
        load_cache.put("odcs_valid", digest, True)
    return error


@cache
def _validator_fingerprint() -> str:
    """What a verdict depends on besides the document: jsonschema, its draft and the schema."""
    validator = _validator()
    return load_cache.key(
        f"jsonschema {version('jsonschema')} {type(validator).__name__}",
        json.dumps(validator.schema, sort_keys=True),
    )


@cache
def _validator() -> jsonschema.Draft201909Validator:
    # Unknown keys are refused before this runs, by unknown_keys (which also suggests the right
    # key), at every level where the schema says `unevaluatedProperties: false`. Evaluating that
    # keyword again was most of the validation time: 0.36 s a contract, 36 s at 1,000 tables.
    schema = copy.deepcopy(published_schema())
    for node in _objects(schema):
        node.pop("unevaluatedProperties", None)
    return jsonschema.Draft201909Validator(schema)


@cache
def logical_type_option_keys() -> dict[str, frozenset[str]]:
    """logicalType -> the logicalTypeOptions keys ODCS defines for it, read from the schema."""
    found: dict[str, frozenset[str]] = {}
    for branch in published_schema()["$defs"]["SchemaBaseProperty"]["allOf"]:
        options = branch.get("then", {}).get("properties", {}).get("logicalTypeOptions")
        if not options:
            continue
        condition = branch["if"]
        for case in condition.get("anyOf", [condition]):
            found[case["properties"]["logicalType"]["const"]] = frozenset(options["properties"])
    return found


def with_logical_types(raw: dict[str, Any], inferred: dict[Path, str]) -> dict[str, Any]:
    """The contract where properties with options but no logicalType get one inferred from their
    physicalType (in a copy), so the schema checks their logicalTypeOptions too."""
    if not inferred:
        return raw
    patched = copy.deepcopy(raw)
    for path, logical in inferred.items():
        node: Any = patched
        for part in path:
            node = node[part]
        node["logicalType"] = logical
    return patched
