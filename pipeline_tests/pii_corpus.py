"""A labeled PII corpus from Faker with a fixed seed: six classes, nine locales, hard negatives."""

import random
import uuid

from faker import Faker

LOCALES = ("en_US", "en_GB", "de_DE", "fr_FR", "es_ES", "ja_JP", "it_IT", "nl_NL", "pt_BR")
# Values stand bare, or inside a sentence, a JSON object or a CSV-like line.
TEMPLATES = (
    "{v}",
    "Please call {v} tomorrow.",
    "Customer wrote: reach me at {v}, thanks",
    "Contact: {v}.",
    '{{"note": "{v}", "priority": 2}}',
    "id;{v};open",
    "Ticket updated (see {v})",
)


def _ssn(rng: random.Random) -> str:
    area = rng.choice([a for a in range(1, 900) if a != 666])
    digits = f"{area:03d}{rng.randint(1, 99):02d}{rng.randint(1, 9999):04d}"
    return _ssn_format(rng, digits)


def _ssn_format(rng: random.Random, d: str) -> str:
    return rng.choice([f"{d[:3]}-{d[3:5]}-{d[5:]}", f"{d[:3]} {d[3:5]} {d[5:]}", d])


def _bad_ssn(rng: random.Random) -> str:
    area, group, serial = rng.randint(1, 899), rng.randint(1, 99), rng.randint(1, 9999)
    broken = rng.choice(["area0", "area666", "area9", "group", "serial"])
    area = {"area0": 0, "area666": 666, "area9": rng.randint(900, 999)}.get(broken, area)
    group, serial = (0 if broken == "group" else group), (0 if broken == "serial" else serial)
    return _ssn_format(rng, f"{area:03d}{group:02d}{serial:04d}")


def _luhn_digit(body: str) -> int:
    total = 0
    for i, ch in enumerate(reversed(body)):
        n = int(ch) * (2 if i % 2 == 0 else 1)
        total += n - 9 if n > 9 else n
    return (10 - total % 10) % 10


def _card(fake: Faker, rng: random.Random) -> str:
    number = fake.credit_card_number()
    if rng.random() < 0.4:  # printed in groups of four
        number = " ".join(number[i : i + 4] for i in range(0, len(number), 4))
    return number


def _non_luhn(rng: random.Random) -> str:
    body = "".join(rng.choice("0123456789") for _ in range(rng.randint(11, 18)))
    return body + str((_luhn_digit(body) + rng.randint(1, 9)) % 10)


def _iban(fake: Faker, rng: random.Random) -> str:
    number = fake.iban()
    return (
        " ".join(number[i : i + 4] for i in range(0, len(number), 4))
        if rng.random() < 0.4
        else number
    )


def _bad_iban(fake: Faker, rng: random.Random) -> str:
    number = fake.iban()
    check = (int(number[2:4]) + rng.randint(1, 50)) % 100
    return f"{number[:2]}{check:02d}{number[4:]}"


def _ip(fake: Faker, rng: random.Random) -> str:
    return fake.ipv4() if rng.random() < 0.6 else fake.ipv6()


def _negatives(fake: Faker, rng: random.Random) -> list[str]:
    """Values that look like PII and are not."""
    d = fake.date_time_between("-5y", "+1y")
    return [
        d.isoformat(),
        d.strftime("%Y-%m-%d %H:%M:%S"),
        d.strftime("%d.%m.%Y"),
        d.strftime("%m/%d/%Y"),
        d.strftime("%Y-%m-%d"),
        str(int(d.timestamp())),
        str(int(d.timestamp() * 1000)),
        f"called back at {d:%H:%M:%S}",
        f"{d:%H:%M}",
        str(uuid.UUID(int=rng.getrandbits(128))),
        f"ORD-{d:%Y}-{rng.randint(1, 999999):06d}",
        f"order #{rng.randint(100000, 99999999)}",
        f"SO-{rng.randint(10000, 99999)}",
        f"1Z{rng.randint(100000, 999999)}A{rng.randint(10**9, 10**10 - 1)}",
        f"9400{rng.randint(10**17, 10**18 - 1)}",
        f"7{rng.randint(10**10, 10**11 - 1)}",
        _non_luhn(rng),
        f"{rng.randint(256, 999)}.{rng.randint(0, 255)}.{rng.randint(0, 255)}.{rng.randint(256, 999)}",
        f"v{rng.randint(0, 20)}.{rng.randint(0, 40)}.{rng.randint(0, 99)}",
        f"{rng.randint(1, 12)}.{rng.randint(0, 9)}.{rng.randint(1000, 30000)}.{rng.randint(100, 9999)}",
        f"Chrome/{rng.randint(90, 140)}.0.{rng.randint(1000, 7000)}.{rng.randint(10, 200)}",
        f"release {rng.randint(1, 9)}.{rng.randint(0, 20)}.{rng.randint(0, 20)}-rc{rng.randint(1, 5)}",
        fake.sha1(),
        fake.sha256(),
        fake.md5(),
        f"${rng.randint(1, 99)},{rng.randint(0, 999):03d}.{rng.randint(0, 99):02d}",
        f"€ {rng.randint(1, 99)}.{rng.randint(0, 999):03d},{rng.randint(0, 99):02d}",
        f"{rng.randint(1, 99)} {rng.randint(0, 999):03d},{rng.randint(0, 99):02d} EUR",
        fake.postcode(),
        _bad_ssn(rng),
        _bad_iban(fake, rng),
        fake.sentence(),
        f"{rng.randint(1, 12)}:{rng.randint(0, 59):02d} pm",
        f"batch {rng.randint(1000, 9999)}-{rng.randint(100, 999)}",
    ]


def corpus(seed: int = 11, per_class: int = 900) -> list[tuple[str, frozenset[str]]]:
    """(value, its PII classes): per_class positives of each class, and the hard negatives."""
    rng = random.Random(seed)
    fakes = {}
    for locale in LOCALES:
        fakes[locale] = Faker(locale)
        fakes[locale].seed_instance(seed)
    us = fakes["en_US"]
    makers = {
        "email": lambda f: f.email(),
        "phone": lambda f: f.phone_number(),
        "ssn": lambda f: _ssn(rng),
        "card": lambda f: _card(us, rng),
        "ip": lambda f: _ip(f, rng),
        "iban": lambda f: _iban(f, rng),
    }
    items: list[tuple[str, frozenset[str]]] = []
    for kind, make in makers.items():
        for i in range(per_class):
            value = make(fakes[LOCALES[i % len(LOCALES)]])
            items.append((rng.choice(TEMPLATES).format(v=value), frozenset({kind})))
    negatives = []
    while len(negatives) < per_class * 5:
        negatives += _negatives(fakes[rng.choice(LOCALES)], rng)
    items += [(rng.choice(TEMPLATES).format(v=v), frozenset()) for v in negatives]
    rng.shuffle(items)
    return items


def scores(labeled: list[tuple[frozenset[str], frozenset[str]]], classes: tuple[str, ...]):
    """Per class (precision, recall), and the precision of "no PII", from (truth, found) pairs."""
    table = {}
    for kind in classes:
        tp = sum(1 for truth, found in labeled if kind in truth and kind in found)
        fp = sum(1 for truth, found in labeled if kind not in truth and kind in found)
        fn = sum(1 for truth, found in labeled if kind in truth and kind not in found)
        table[kind] = (tp / max(1, tp + fp), tp / max(1, tp + fn))
    clean = [truth for truth, found in labeled if not found]
    table["none"] = (sum(1 for truth in clean if not truth) / max(1, len(clean)), None)
    return table
