"""PII patterns, written once for DuckDB (RE2), Snowflake (POSIX) and Python's re alike."""

import re

# Character classes instead of backslash escapes, so every engine reads them the same way.
PATTERNS = {
    "email": r"[A-Za-z0-9._%+-]+@[A-Za-z0-9.-]+[.][A-Za-z]{2,}",
    "ssn": r"(^|[^0-9])[0-9]{3}-[0-9]{2}-[0-9]{4}([^0-9]|$)",
    "phone": r"(^|[^0-9])([+][0-9]{1,3}[ .-]?)?[(]?[0-9]{3}[)]?[ .-][0-9]{3}[ .-][0-9]{4}([^0-9]|$)",
    "card": r"(^|[^0-9A-Za-z])[0-9]{4}([ -]?[0-9]{4}){2}[ -]?[0-9]{1,7}([^0-9A-Za-z]|$)",
    "ipv4": r"(^|[^0-9.])(25[0-5]|2[0-4][0-9]|1?[0-9]?[0-9])([.](25[0-5]|2[0-4][0-9]|1?[0-9]?[0-9])){3}([^0-9.]|$)",
    "ipv6": r"(^|[^0-9A-Za-z:])([0-9A-Fa-f]{1,4}:){1,7}:?[0-9A-Fa-f]{1,4}([^0-9A-Za-z:]|$)",
    "iban": r"(^|[^A-Z0-9])[A-Z]{2}[0-9]{2}( ?[A-Z0-9]{4}){2,7}( ?[A-Z0-9]{1,4})?([^A-Z0-9]|$)",
}
# One alternation costs about as much as one pattern: the clean path pays for one regex per value.
ANY_PII = "|".join(f"({pattern})" for pattern in PATTERNS.values())
HASH_SHAPE = r"[0-9a-fA-F]{64}|[A-Za-z0-9+/]{43}="
# Python's backtracking re would retry the email local part from every character of a long
# run (quadratic: minutes on a 1 MB value); start it only where a run starts. Same matches.
_COMPILED = {
    kind: re.compile(r"(?<![A-Za-z0-9._%+-])" + pattern if kind == "email" else pattern)
    for kind, pattern in PATTERNS.items()
}


def luhn_valid(digits: str) -> bool:
    numbers = [int(d) for d in digits if d.isdigit()]
    if not 13 <= len(numbers) <= 19:
        return False
    total = 0
    for i, n in enumerate(reversed(numbers)):
        total += n if i % 2 == 0 else (n * 2 - 9 if n > 4 else n * 2)
    return total % 10 == 0


def iban_valid(text: str) -> bool:
    # The match may carry a boundary character ("=", "/", "+"): only letters and digits count.
    compact = "".join(c for c in text if c.isascii() and c.isalnum())
    rearranged = compact[4:] + compact[:4]
    return 15 <= len(compact) <= 34 and int("".join(str(int(c, 36)) for c in rearranged)) % 97 == 1


def _ipv6_valid(text: str) -> bool:
    # "12:30:45" is a time, not an address: require a hex letter or a "::" in the match.
    return "::" in text or any(c in "abcdefABCDEF" for c in text)


_VALIDATORS = {"card": luhn_valid, "iban": iban_valid, "ipv6": _ipv6_valid}


def pii_kinds(value: str) -> list[str]:
    """Kinds of PII found in a value, after checksum validation where one exists."""
    found = []
    for kind, pattern in _COMPILED.items():
        for match in pattern.finditer(value):
            candidate = match.group(0).strip(" ,;:()<>[]\"'")
            if _VALIDATORS.get(kind, lambda _: True)(candidate):
                found.append(kind)
                break
    return found
