"""HubSpot-like companies, contacts and deals, as the source holds them (emails, phones raw)."""

from decimal import Decimal

import numpy as np
import pandas as pd

from pipeline.sandbox.sample_data import (
    DAY,
    FIRST_NAMES,
    LAST_NAMES,
    dates,
    numeric_ids,
    pick,
    rng,
    timestamps_after,
    timestamps_before_anchor,
    with_nulls,
)

PREFIXES = """Northwind Bluefin Copperleaf Silverline Redwood Brightpath Evergreen Ironbridge
Lighthouse Granite Summit Riverstone Harbor Falcon Meridian Orchard Beacon Cobalt Juniper Atlas
Pioneer Sterling Cedar Horizon Quarry""".split()  # noqa: SIM905
SUFFIXES = ["Logistics", "Analytics", "Health", "Foods", "Robotics", "Capital", "Software",
            "Energy", "Studios", "Labs", "Retail", "Manufacturing", "Bio", "Travel"]  # fmt: skip
INDUSTRIES = ["Software", "Financial Services", "Healthcare", "Retail", "Manufacturing",
              "Logistics", "Media", "Education", "Energy", "Hospitality"]  # fmt: skip
JOB_TITLES = ["Head of Data", "VP Finance", "CTO", "Data Engineer", "Procurement Manager",
              "Analytics Lead", "Operations Director", "CFO", "Product Manager", None]  # fmt: skip
LIFECYCLE = ["subscriber", "lead", "marketingqualifiedlead", "salesqualifiedlead",
             "opportunity", "customer", "evangelist", "other"]  # fmt: skip
STAGES = ["appointmentscheduled", "qualifiedtobuy", "presentationscheduled",
          "decisionmakerboughtin", "contractsent", "closedwon", "closedlost"]  # fmt: skip
NOTES = ["Intro call went well; they want a pilot for the {team} team.",
         "Pricing sent, waiting on procurement.",
         "Asked for SSO and audit logs before signing.",
         "Renewal at risk – our champion left the company.",
         "Budget approved for {quarter}; legal review next.",
         "Competitor is cheaper, we win on support. Follow up after {quarter} planning.",
         "Needs {seats} seats to start, expanding to the {team} team later.",
         "Security questionnaire returned to their {team} team."]  # fmt: skip
TEAMS = ["finance", "data", "marketing", "operations", "sales", "support"]


def companies(n: int = 500) -> pd.DataFrame:
    gen = rng(11)
    names = [
        f"{p} {s}" for p, s in zip(pick(gen, PREFIXES, n), pick(gen, SUFFIXES, n), strict=True)
    ]
    tld = pick(gen, [".com", ".io", ".co", ".de", ".co.uk"], n, [60, 15, 10, 8, 7])
    return pd.DataFrame(
        {
            "id": numeric_ids(gen, 9_100_000_000, n),
            "name": names,
            "domain": [
                name.lower().replace(" ", "") + t for name, t in zip(names, tld, strict=True)
            ],
            "industry": with_nulls(gen, pick(gen, INDUSTRIES, n), share=0.1),
            "employee_count": with_nulls(gen, np.ceil(gen.lognormal(4, 1.5, n)).astype(int), 0.15),
            "created_at": timestamps_before_anchor(gen, n, days=4 * 365),
        }
    )


def contacts(comp: pd.DataFrame, n: int = 3_000) -> pd.DataFrame:
    gen = rng(12)
    employer = gen.integers(0, len(comp), size=n)
    first, last = pick(gen, FIRST_NAMES, n), pick(gen, LAST_NAMES, n)
    domain = comp["domain"].to_numpy()[employer]
    phone = [f"+1 {a} 555 {b:04d}" for a, b in zip(gen.integers(200, 990, n), gen.integers(0, 10_000, n), strict=True)]  # fmt: skip
    return pd.DataFrame(
        {
            "id": numeric_ids(gen, 51_000_000, n),
            # About 5% have no company in HubSpot yet.
            "company_id": with_nulls(gen, comp["id"].to_numpy()[employer], share=0.05),
            "email": [f"{f}.{s}@{d}".lower() for f, s, d in zip(first, last, domain, strict=True)],
            "phone": with_nulls(gen, phone, share=0.3),
            "first_name": first,
            "last_name": last,
            "job_title": pick(gen, JOB_TITLES, n),
            "lifecycle_stage": pick(gen, LIFECYCLE, n, [5, 20, 15, 10, 15, 30, 2, 3]),
            "created_at": timestamps_after(gen, comp["created_at"].to_numpy()[employer]),
        }
    )


def deals(comp: pd.DataFrame, cont: pd.DataFrame, n: int = 4_000) -> pd.DataFrame:
    gen = rng(13)
    # A deal's contact works at the deal's company; about 20% of deals have no contact.
    with_contact = gen.random(n) < 0.8
    contact = gen.integers(0, len(cont), size=n)
    contact_company = cont["company_id"].to_numpy()[contact]
    with_contact &= pd.notna(contact_company)
    company = comp["id"].to_numpy()[gen.integers(0, len(comp), size=n)]
    created = timestamps_before_anchor(gen, n, days=2 * 365)
    cents = gen.lognormal(10, 1, n).astype(np.int64) * 100 + gen.integers(0, 100, n)
    notes = [
        template.format(team=t, quarter=f"Q{q}", seats=s)
        for template, t, q, s in zip(
            pick(gen, NOTES, n), pick(gen, TEAMS, n), gen.integers(1, 5, n), gen.integers(5, 400, n), strict=True
        )
    ]  # fmt: skip
    return pd.DataFrame(
        {
            "id": numeric_ids(gen, 27_000_000_000, n),
            "company_id": np.where(with_contact, contact_company, company),
            "contact_id": np.where(with_contact, cont["id"].to_numpy()[contact], None),
            "amount": with_nulls(gen, [Decimal(int(c)).scaleb(-2) for c in cents], share=0.05),
            "stage": pick(gen, STAGES, n, [10, 15, 15, 10, 10, 25, 15]),
            "close_date": with_nulls(
                gen, dates(created + gen.integers(7, 180, n) * DAY), share=0.25
            ),
            "notes": with_nulls(gen, notes, share=0.2),
            "created_at": created,
        }
    )


def frames() -> dict[str, pd.DataFrame]:
    comp = companies()
    cont = contacts(comp)
    return {"companies": comp, "contacts": cont, "deals": deals(comp, cont)}
