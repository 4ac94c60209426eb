"""Stripe-like customers, invoices and charges, as the source holds them (emails still raw)."""

import numpy as np
import pandas as pd

from pipeline.sandbox.sample_data import (
    DAY,
    EMAIL_DOMAINS,
    FIRST_NAMES,
    LAST_NAMES,
    alnum_ids,
    dates,
    pick,
    rng,
    timestamps_after,
    timestamps_before_anchor,
    with_nulls,
)

COUNTRIES = {"US": "usd", "GB": "gbp", "DE": "eur", "FR": "eur", "NL": "eur", "ES": "eur",
             "IE": "eur", "CA": "usd", "AU": "usd"}  # fmt: skip
PLANS = {"Starter": 900, "Pro": 2_900, "Team": 9_900, "Enterprise": 49_900}
ONE_OFF = ["One-time setup fee", "Add-on: extra seats", "Usage overage – API calls",
           "Onboarding workshop", "Priority support add-on", None]  # fmt: skip


def customers(n: int = 2_000) -> pd.DataFrame:
    gen = rng(1)
    first, last = pick(gen, FIRST_NAMES, n), pick(gen, LAST_NAMES, n)
    emails = [
        f"{f}.{s}{i % 97}@{d}".lower()
        for i, (f, s, d) in enumerate(zip(first, last, pick(gen, EMAIL_DOMAINS, n), strict=True))
    ]
    return pd.DataFrame(
        {
            "id": alnum_ids(gen, "cus_", 14, n),
            "email": emails,
            "name": [f"{f} {s}" for f, s in zip(first, last, strict=True)],
            "country": pick(gen, list(COUNTRIES), n, [40, 15, 10, 8, 5, 5, 3, 8, 6]),
            "created": timestamps_before_anchor(gen, n, days=3 * 365),
            "delinquent": gen.random(n) < 0.04,
        }
    )


def invoices(cust: pd.DataFrame, n: int = 5_000) -> pd.DataFrame:
    gen = rng(2)
    owner = gen.integers(0, len(cust), size=n)
    created = timestamps_after(gen, cust["created"].to_numpy()[owner])
    amount_due = pick(gen, list(PLANS.values()), n, [40, 35, 20, 5]) * gen.integers(1, 4, n)
    status = pick(gen, ["paid", "open", "void", "uncollectible"], n, [78, 12, 6, 4])
    # Invoices charged automatically have no due date in Stripe; sent invoices are due in 30 days.
    due = with_nulls(gen, dates(created + 30 * DAY), share=0.6)
    return pd.DataFrame(
        {
            "id": alnum_ids(gen, "in_", 24, n),
            "customer_id": cust["id"].to_numpy()[owner],
            "amount_due": amount_due,
            "amount_paid": np.where(status == "paid", amount_due, 0),
            "status": status,
            "due_date": due,
            "created": created,
        }
    )


def charges(cust: pd.DataFrame, inv: pd.DataFrame, n: int = 10_000) -> pd.DataFrame:
    gen = rng(3)
    # About 70% pay an invoice (same customer, same amount); the rest are one-off charges.
    invoiced = gen.random(n) < 0.7
    invoice = gen.integers(0, len(inv), size=n)
    buyer = gen.integers(0, len(cust), size=n)
    customer_id = np.where(
        invoiced, inv["customer_id"].to_numpy()[invoice], cust["id"].to_numpy()[buyer]
    )
    plan = pick(gen, list(PLANS), n)
    renewal = [f"Subscription {kind} – {p} plan" for kind, p in
               zip(pick(gen, ["renewal", "creation", "update"], n, [80, 15, 5]), plan, strict=True)]  # fmt: skip
    one_off = pick(gen, ONE_OFF, n)
    starts = np.where(
        invoiced, inv["created"].to_numpy()[invoice], cust["created"].to_numpy()[buyer]
    )
    country = pd.Series(customer_id).map(dict(zip(cust["id"], cust["country"], strict=True)))
    return pd.DataFrame(
        {
            "id": alnum_ids(gen, "ch_", 24, n),
            "customer_id": customer_id,
            "invoice_id": np.where(invoiced, inv["id"].to_numpy()[invoice], None),
            "amount": np.where(
                invoiced, inv["amount_due"].to_numpy()[invoice], gen.integers(5, 500, n) * 100
            ),
            "currency": country.map(COUNTRIES).to_numpy(),
            "status": pick(gen, ["succeeded", "failed", "pending"], n, [86, 10, 4]),
            "description": np.where(invoiced, renewal, one_off),
            "created": timestamps_after(gen, starts.astype("datetime64[us]")),
        }
    )


def frames() -> dict[str, pd.DataFrame]:
    cust = customers()
    inv = invoices(cust)
    return {"customers": cust, "charges": charges(cust, inv), "invoices": inv}
