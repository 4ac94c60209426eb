"""PII candidate patterns, written once for DuckDB (RE2), Snowflake (POSIX) and Python's re alike.

Each class has a core pattern and boundaries. In SQL the boundaries are consumed characters (RE2
and POSIX have no lookaround); in Python they are lookarounds, so adjacent values are all found.
Both forms accept exactly the same texts, so a value SQL selects is one Python can explain.
"""

import re
from dataclasses import dataclass

# Character classes instead of backslash escapes, so every engine reads them the same way.
_OCTET = "(25[0-5]|2[0-4][0-9]|1[0-9][0-9]|[1-9]?[0-9])"
_HEX = "[0-9A-Fa-f]{1,4}"
_AREA = "(00[1-9]|0[1-9][0-9]|[1-578][0-9][0-9]|6[0-57-9][0-9]|66[0-57-9])"  # not 000, 666, 9xx
_GROUP = "(0[1-9]|[1-9][0-9])"  # not 00
_SERIAL = "(000[1-9]|00[1-9][0-9]|0[1-9][0-9][0-9]|[1-9][0-9][0-9][0-9])"  # not 0000
_EXT = "( ?(x|ext[.]?|#) ?[0-9]{1,6})?"


@dataclass(frozen=True)
class Shape:
    """A class's core pattern and what may not stand right before or after it."""

    core: str
    left: str = ""  # characters that may not precede the match
    right: str = ""  # characters that may not follow it
    soft: str = ""  # characters that may follow only when no `right` character follows them
    after_slash: bool = False  # "/" may precede it when a non-alphanumeric precedes the "/"
    after_colon: bool = False  # ":" may precede it when a non-digit precedes the ":"

    @property
    def sql(self) -> str:
        left = f"[^{self.left}]" if self.left else ""
        if self.after_slash:
            left += "|(^|[^0-9A-Za-z])/"
        if self.after_colon:
            left += "|(^|[^0-9]):"
        right = ""
        if self.right:
            soft = f"|[{self.soft}]([^{self.right}]|$)" if self.soft else ""
            right = f"([^{self.right}{self.soft}]{soft}|$)"
        return f"{f'(^|{left})' if left else ''}({self.core}){right}"

    @property
    def python(self) -> re.Pattern[str]:
        left = ""
        if self.left:
            options = [f"(?<![{self.left}])"]
            if self.after_slash:
                options += ["(?<=[^0-9A-Za-z]/)", "(?<=^/)"]
            if self.after_colon:
                options += ["(?<=[^0-9]:)", "(?<=^:)"]
            left = f"(?:{'|'.join(options)})"
        right = f"(?![{self.right}])" if self.right else ""
        if self.soft:
            right += f"(?![{self.soft}][{self.right}])"
        return re.compile(f"{left}(?P<pii>{self.core}){right}")


_PHONE_LEFT = "0-9A-Za-z_.,/#@+:-"
SHAPES: dict[str, Shape] = {
    # Python's backtracking re would retry the local part from every character of a long run
    # (quadratic on a 1 MB value): the left boundary starts it only where a run starts.
    "email": Shape("[A-Za-z0-9._%+-]+@[A-Za-z0-9.-]+[.][A-Za-z]{2,}", left="A-Za-z0-9._%+-"),
    "ssn": Shape(
        f"{_AREA}-{_GROUP}-{_SERIAL}|{_AREA} {_GROUP} {_SERIAL}",
        left="0-9A-Za-z#.,/@_-",
        right="0-9A-Za-z_",
        soft=".,/-",
    ),
    # Nine bare digits are an SSN unless they are part of a phone number, card or IBAN.
    "ssn_bare": Shape(
        f"{_AREA}{_GROUP}{_SERIAL}", left="0-9A-Za-z#.,/@_-", right="0-9A-Za-z_", soft=".,/-"
    ),
    "ipv4": Shape(
        f"{_OCTET}[.]{_OCTET}[.]{_OCTET}[.]{_OCTET}",
        left="0-9A-Za-z_./@-",
        right="0-9A-Za-z_",
        soft=".",
        after_slash=True,
    ),
    "ipv6": Shape(
        f"({_HEX}:){{7}}{_HEX}|({_HEX}:){{1,6}}(:{_HEX}){{1,6}}|({_HEX}:){{1,7}}:|::({_HEX}:){{0,6}}{_HEX}",
        left="0-9A-Za-z_.:",
        right="0-9A-Za-z_:",
        soft=".",
    ),
    # 12 to 19 digits starting like an issuer (2-6, JCB's 1800 and 2131): epoch milliseconds and
    # most order numbers never become candidates.
    "card": Shape(
        "[2-6]([ -]?[0-9]){11,18}|(1800|2131)([ -]?[0-9]){11}",
        left="0-9A-Za-z_.,/#@+-",
        right="0-9A-Za-z_",
        soft=".,-",
    ),
    "iban": Shape(
        "[A-Z]{2}[0-9]{2}( ?[A-Z0-9]{4}){2,7}( ?[A-Z0-9]{1,3})?",
        left="A-Za-z0-9",
        right="A-Za-z0-9",
    ),
    # International (+ or 00), a parenthesised area code, three or more separated groups, a trunk
    # 0 then a long group, or a bare NANP / trunk / Italian mobile run; dates and times do not fit.
    "phone": Shape(
        "([+][1-9][0-9 ()./-]{6,20}[0-9]"
        "|00[1-9][0-9 ()./-]{6,18}[0-9]"
        "|[(][0-9]{2,5}[)][ .-]?[0-9]{2,5}([ .-]?[0-9]{2,5}){0,3}"
        "|[0-9]{1,5}[ ./-][0-9]{3,5}[ ./-][0-9]{2,5}([ ./-][0-9]{2,5}){0,2}"
        "|[0-9]{1,5}( [0-9]{2,5}){3,5}|[0-9]{1,5}([.][0-9]{2,5}){3,5}|[0-9]{1,5}(-[0-9]{2,5}){3,5}"
        "|0[0-9]{1,4}[ ./-][0-9]{5,9}"
        "|1?[2-9][0-9][0-9][2-9][0-9]{6}|0[1-9][0-9]{8,9}|3[0-9]{9,10})" + _EXT,
        left=_PHONE_LEFT,
        right="0-9A-Za-z_",
        soft=".,/:-",
        after_colon=True,
    ),
}
# Classes the pattern alone decides (no checksum or numbering plan): SQL confirms them itself.
SURE = ("email", "ssn", "ipv4")
# The contract's class for each pattern.
CLASS_OF = {"email": "email", "ssn": "ssn", "ssn_bare": "ssn", "ipv4": "ip", "ipv6": "ip", "card": "card",
            "iban": "iban", "phone": "phone"}  # fmt: skip
CLASSES = ("email", "phone", "ssn", "card", "ip", "iban")

PATTERNS = {kind: shape.sql for kind, shape in SHAPES.items()}
# One alternation costs about as much as one pattern: the clean path pays for one regex per value.
ANY_PII = "|".join(f"({pattern})" for pattern in PATTERNS.values())
HASH_SHAPE = r"[0-9a-fA-F]{64}|[A-Za-z0-9+/]{43}="
