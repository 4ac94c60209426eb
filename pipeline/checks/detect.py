"""Confirm PII candidates: checksums, issuing rules and numbering plans decide, not shapes."""

import ipaddress
import re
from dataclasses import dataclass

import phonenumbers
from stdnum import iban as iban_number
from stdnum import luhn

from pipeline.checks.patterns import CLASS_OF, SHAPES, SURE


@dataclass(frozen=True, order=True)
class Match:
    start: int
    end: int
    kind: str  # the contract's class: email, phone, ssn, card, ip, iban


# (first digits, lengths) of the card issuers: Visa, Mastercard, Amex, Discover, Diners, JCB,
# UnionPay, Maestro, Mir. A Luhn-valid run outside them is an account or order number.
_ISSUERS = [
    (("4",), (13, 16, 19)),
    (tuple(str(p) for p in range(51, 56)), (16,)),
    (tuple(str(p) for p in range(2221, 2721)), (16,)),
    (tuple(str(p) for p in range(2200, 2205)), tuple(range(16, 20))),
    (("34", "37"), (15,)),
    (("300", "301", "302", "303", "304", "305", "36", "38", "39"), tuple(range(14, 20))),
    (("35",), tuple(range(16, 20))),  # JCB's 3528-3589, and the 35xx test numbers generators use
    (("1800", "2131"), (15,)),
    (("50", "56", "57", "58", "6"), tuple(range(12, 20))),
]


def card_valid(text: str) -> bool:
    """12-19 digits from a card issuer's range, Luhn-valid."""
    digits = re.sub(r"[ -]", "", text)
    if not digits.isdigit() or not 12 <= len(digits) <= 19:
        return False
    issued = any(
        digits.startswith(prefixes) and len(digits) in lengths for prefixes, lengths in _ISSUERS
    )
    return issued and luhn.is_valid(digits)


def iban_valid(text: str) -> bool:
    """A country's IBAN length and format, mod-97 valid; trailing words the pattern took are dropped."""
    groups = text.split(" ")
    while groups:
        compact = "".join(groups)
        if len(compact) < 15:
            return False
        if iban_number.is_valid(compact):
            return True
        groups = groups[:-1] if len(groups) > 1 else [compact[:-1]]
    return False


def ipv6_valid(text: str) -> bool:
    try:
        ipaddress.IPv6Address(text)
    except ValueError:
        return False
    return True


# Where a national number (no + or 00) could be from: countries with a trunk 0, and those without.
_TRUNK_COUNTRIES = (44, 49, 33, 31, 81, 91, 61, 43, 41, 32, 46, 86, 7, 48, 90, 62, 27)
_DATE = re.compile(r"\d{4}[./-]\d{1,2}[./-]\d{1,2}|\d{1,2}[./-]\d{1,2}[./-]\d{2,4}")
_EXTENSION = re.compile(r" ?(?:x|ext\.?|#) ?\d{1,6}$")


def phone_valid(text: str) -> bool:
    """A number libphonenumber finds possible (valid, for a bare digit run) in some numbering plan."""
    number = _EXTENSION.sub("", text)
    if _DATE.fullmatch(number) or re.fullmatch(r"\d{1,3}(?:\.\d{1,3}){3}", number):
        return False  # a date, or a dotted quad (an address or a version), is never a phone
    if "." in number and re.search(r"(?:^|\.)\d(?:\.|$)", number):
        return False  # 10.0.19045.2364: versions have one-digit parts, dotted phones do not
    digits = re.sub(r"\D", "", number)
    if number.startswith(("+", "00")):
        plus = "+" + number[2:] if number.startswith("00") else number
        try:
            parsed = phonenumbers.parse(plus, None)
        except phonenumbers.NumberParseException:
            return False
        return 8 <= len(digits) <= 15 and phonenumbers.is_possible_number(parsed)
    if not 8 <= len(digits) <= 11:
        return False
    check = phonenumbers.is_valid_number if digits == number else phonenumbers.is_possible_number
    return any(check(candidate) for candidate in _national(digits))


def _national(digits: str) -> list[phonenumbers.PhoneNumber]:
    def number(code: int, national: str, **kw: bool) -> phonenumbers.PhoneNumber:
        return phonenumbers.PhoneNumber(country_code=code, national_number=int(national), **kw)

    if digits.startswith("0"):
        return [number(code, digits[1:]) for code in _TRUNK_COUNTRIES if digits[1:]] + [
            number(39, digits, italian_leading_zero=True)
        ]
    found = []
    if len(digits) == 10 or (len(digits) == 11 and digits.startswith("1")):
        found.append(number(1, digits[-10:]))  # North America
    found += [number(39, digits), number(34, digits), number(55, digits), number(52, digits)]
    return found


_VALIDATORS = {"card": card_valid, "iban": iban_valid, "ipv6": ipv6_valid, "phone": phone_valid}
# Checked in this order; a card inside an IBAN, or a phone-shaped part of a card, SSN, address
# or IBAN, is not counted again. The SURE classes are never dropped, so Python agrees with SQL.
_ORDER = ("iban", "email", "ssn", "ipv4", "ipv6", "card", "phone", "ssn_bare")


def candidates(text: str) -> list[Match]:
    """Every span shaped like PII, confirmed or not (what redaction hides)."""
    return sorted(
        Match(m.start("pii"), m.end("pii"), CLASS_OF[kind])
        for kind, shape in SHAPES.items()
        for m in shape.python.finditer(text)
    )


def confirmed(text: str) -> list[Match]:
    """The PII in a text: candidates that pass their checksum, issuing rules or numbering plan."""
    found: list[Match] = []
    for kind in _ORDER:
        valid = _VALIDATORS.get(kind)
        for m in SHAPES[kind].python.finditer(text):
            start, end = m.start("pii"), m.end("pii")
            if kind not in SURE and any(f.start < end and start < f.end for f in found):
                continue
            if valid is None or valid(m.group("pii")):
                found.append(Match(start, end, CLASS_OF[kind]))
    return sorted(found)


def pii_classes(text: str) -> list[str]:
    """The contract classes of PII found in a text, sorted."""
    return sorted({m.kind for m in confirmed(text)})
