"""Building blocks for the sandbox's sample rows: one seed, one anchor date, plain vocabularies."""

import string

import numpy as np

SEED = 20260101
ANCHOR = np.datetime64("2026-01-01T00:00:00", "us")  # business timestamps end here, every run
DAY = np.timedelta64(1, "D")
# Stripe mixes cases; upper-case letters would make a few ids look like IBANs to the PII scan.
_ALNUM = np.array(list(string.ascii_lowercase + string.digits))

FIRST_NAMES = """Olivia Liam Emma Noah Amelia Oliver Sophia Elijah Isabella Lucas Mia Mateo
Charlotte Levi Ava Ethan Harper James Luna Henry Evelyn Leo Aria Jack Chloe Sofia Hiro Amara
Priya Arjun Mei Chen Fatima Omar Ingrid Lars Camille Julien Zainab Kwame Lucia Diego""".split()  # noqa: SIM905
LAST_NAMES = """Smith Johnson Williams Brown Garcia Miller Davis Rodriguez Martinez Hernandez
Lopez Wilson Anderson Thomas Taylor Moore Martin Lee Thompson White Harris Clark Lewis Walker
Young Allen King Wright Scott Nguyen Patel Kim Tanaka Muller Dubois Rossi Silva Okafor Novak
Jensen""".split()  # noqa: SIM905
EMAIL_DOMAINS = ["gmail.com", "outlook.com", "yahoo.com", "icloud.com", "proton.me", "fastmail.com"]


def rng(stream: int) -> np.random.Generator:
    """A generator of its own per table, so changing one table never reshuffles another."""
    return np.random.default_rng([SEED, stream])


def alnum_ids(gen: np.random.Generator, prefix: str, length: int, n: int) -> np.ndarray:
    """Stripe-style ids: a prefix and `length` random letters and digits."""
    chars = _ALNUM[gen.integers(0, len(_ALNUM), size=(n, length))]
    return np.char.add(prefix, chars.view(f"<U{length}").ravel())


def numeric_ids(gen: np.random.Generator, start: int, n: int) -> np.ndarray:
    """HubSpot-style object ids: large, increasing, with gaps."""
    return start + np.cumsum(gen.integers(1, 5_000, size=n))


def pick(gen: np.random.Generator, choices: list, n: int, weights: list[float] | None = None):
    p = None if weights is None else np.asarray(weights) / sum(weights)
    return np.asarray(choices, dtype=object)[gen.choice(len(choices), size=n, p=p)]


def timestamps_before_anchor(gen: np.random.Generator, n: int, days: int) -> np.ndarray:
    """Whole-second timestamps spread over the `days` before the anchor date."""
    seconds = gen.integers(0, days * 86_400, size=n)
    return ANCHOR - seconds.astype("timedelta64[s]")


def timestamps_after(gen: np.random.Generator, starts: np.ndarray) -> np.ndarray:
    """Whole-second timestamps between each start and the anchor date."""
    span = (ANCHOR - starts).astype("timedelta64[s]").astype(np.int64)
    return starts + (gen.random(len(starts)) * span).astype("timedelta64[s]")


def with_nulls(gen: np.random.Generator, values, share: float) -> list:
    """The values as a list, about `share` of them replaced by None."""
    missing = gen.random(len(values)) < share
    return [None if gone else value for value, gone in zip(values, missing, strict=True)]


def dates(moments: np.ndarray) -> list:
    return list(moments.astype("datetime64[D]").astype(object))
