"""Check an asset selection before a run: a clear message instead of Dagster's traceback.

`python -m pipeline.selection "$SELECTION"` exits 2 naming what is wrong; `make run` and the CI
example call it before `dg launch --assets`.
"""

import re
import sys
import warnings

from dagster import AssetSelection
from dagster._core.definitions.asset_selection import DagsterInvalidAssetSelectionError

_UNQUOTED_OWNER = re.compile(r'owner:(?!")([^\s,()]+:[^\s,()]+)')
_LEGACY_PATH = re.compile(r"(^|[\s+(])(?![a-z_]+:)[^\s:+()]+/[^\s]*\*")


class BadSelection(ValueError):
    """A selection Dagster cannot parse, or one that does not mean what it looks like."""


def parse(text: str) -> AssetSelection:
    """The selection as Dagster reads it (comma-separated terms, as `dg launch --assets`)."""
    if owner := _UNQUOTED_OWNER.search(text):
        raise BadSelection(
            f"{text!r}: owner names contain a colon, so quote them: "
            f'owner:"{owner[1]}" (in a shell: \'owner:"{owner[1]}"\')'
        )
    if legacy := _LEGACY_PATH.search(text):
        path = legacy[0].strip(" +(")
        raise BadSelection(
            f"{text!r}: {path} is the old path syntax, which means one asset named "
            f"{path.rstrip('*')} and everything downstream; write key:{path}"
        )
    try:
        terms = [AssetSelection.from_string(term) for term in text.split(",")]
    except DagsterInvalidAssetSelectionError as error:
        raise BadSelection(
            f"{text!r} is not an asset selection ({error}); see "
            "https://docs.dagster.io/guides/build/assets/asset-selection-syntax"
        ) from None
    selection = terms[0]
    for term in terms[1:]:
        selection = selection | term
    return selection


def main(argv: list[str]) -> int:
    if len(argv) != 1:
        print('usage: python -m pipeline.selection "<asset selection>"', file=sys.stderr)
        return 2
    warnings.filterwarnings("ignore", category=Warning, module="dagster")  # beta notices
    try:
        parse(argv[0])
    except BadSelection as error:
        print(f"tollgate: invalid selection {error}", file=sys.stderr)
        return 2
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
