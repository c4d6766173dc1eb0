#!/usr/bin/env python3
"""Write the sample data of specs/ and examples/*: small, realistic, consistent and byte-identical on every run.

Standard library only.  Every data set draws from its own random.Random(seed), so changing one data set does not
reshuffle the others.  Run from anywhere:

    python scripts/make_sample_data.py

Layout (see the `sample:` key of each source):
  postgres source  data/<source>/<table>.csv            header row, columns as declared, in declared order
  api source       data/<source>/<endpoint>/page-NNN.json  raw response bodies in page order
  file source      data/<source>/<files matching the table patterns>

A few rows are deliberately dirty, so that the silver rules have something to do: mixed-case or padded values
(case/trim), test orders (filter), a re-published FX rate and a re-delivered web event (dedup).
"""

from __future__ import annotations

import base64
import csv
import datetime as dt
import json
import math
import shutil
import unicodedata
import uuid
from collections.abc import Iterable, Sequence
from decimal import ROUND_HALF_UP, Decimal
from pathlib import Path
from random import Random

ROOT = Path(__file__).resolve().parent.parent
UTC = dt.UTC
CET = dt.timezone(dt.timedelta(hours=1))
CENT = Decimal("0.01")


# --------------------------------------------------------------------------- helpers


def money(value: Decimal | float | int | str) -> Decimal:
    """Round half up to cents."""
    return Decimal(str(value)).quantize(CENT, rounding=ROUND_HALF_UP)


def ts(moment: dt.datetime) -> str:
    """ISO 8601 with offset, whole seconds: 2024-03-01T10:15:00+00:00."""
    return moment.replace(microsecond=0).isoformat()


def ascii_fold(text: str) -> str:
    """'jürgen' -> 'jurgen': e-mail local parts stay ASCII."""
    return unicodedata.normalize("NFKD", text).encode("ascii", "ignore").decode("ascii")


def day(value: dt.date) -> str:
    return value.isoformat()


def days(first: dt.date, last: dt.date) -> list[dt.date]:
    return [first + dt.timedelta(n) for n in range((last - first).days + 1)]


def cell(value: object) -> str:
    """CSV text of a value: booleans as true/false, None as an empty field."""
    if value is None:
        return ""
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, dt.datetime):
        return ts(value)
    if isinstance(value, dt.date):
        return day(value)
    return str(value)


def fresh_dir(path: Path) -> Path:
    """An empty folder for one source's sample data (only folders this script owns are cleared)."""
    if path.exists():
        shutil.rmtree(path)
    path.mkdir(parents=True)
    return path


def write_csv(path: Path, header: Sequence[str], rows: Iterable[Sequence[object]], delimiter: str = ",") -> int:
    path.parent.mkdir(parents=True, exist_ok=True)
    count = 0
    with path.open("w", encoding="utf-8", newline="") as handle:
        writer = csv.writer(handle, delimiter=delimiter, lineterminator="\n")
        writer.writerow(header)
        for row in rows:
            assert len(row) == len(header), (path, row)
            writer.writerow([cell(v) for v in row])
            count += 1
    return count


def write_json(path: Path, body: object) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps(body, indent=2, ensure_ascii=False) + "\n", encoding="utf-8")


def write_jsonl(path: Path, records: Iterable[dict[str, object]]) -> int:
    path.parent.mkdir(parents=True, exist_ok=True)
    lines = [json.dumps(r, ensure_ascii=False, separators=(", ", ": ")) for r in records]
    path.write_text("".join(line + "\n" for line in lines), encoding="utf-8")
    return len(lines)


def rng_uuid(rng: Random) -> str:
    return str(uuid.UUID(int=rng.getrandbits(128), version=4))


def weighted(rng: Random, options: dict[str, float]) -> str:
    return rng.choices(list(options), weights=list(options.values()))[0]


def page_name(number: int) -> str:
    return f"page-{number:03d}.json"


REPORT: list[tuple[str, int]] = []


def report(path: Path, rows: int) -> None:
    REPORT.append((path.relative_to(ROOT).as_posix(), rows))


# --------------------------------------------------------------------------- specs/ : acme_shop

FIRST_NAMES = [
    "Anna",
    "Lukas",
    "Marie",
    "Jonas",
    "Sophie",
    "Felix",
    "Emma",
    "Paul",
    "Léa",
    "Hugo",
    "Chloé",
    "Louis",
    "Sanne",
    "Daan",
    "Lucía",
    "Pablo",
    "Giulia",
    "Marco",
    "Olivia",
    "James",
    "Emily",
    "Noah",
    "Ava",
    "Liam",
    "Grace",
    "Oliver",
    "Jürgen",
    "Zoë",
    "Mia",
    "Ben",
]
LAST_NAMES = [
    "Schmidt",
    "Müller",
    "Weber",
    "Fischer",
    "Martin",
    "Bernard",
    "Dubois",
    "de Vries",
    "Jansen",
    "García",
    "López",
    "Rossi",
    "Bianchi",
    "Smith",
    "Johnson",
    "Brown",
    "Taylor",
    "Wilson",
    "Evans",
    "Walker",
]
COUNTRIES = {"DE": 12, "FR": 6, "NL": 4, "ES": 3, "IT": 3, "US": 7, "GB": 5}
CURRENCY = {"DE": "EUR", "FR": "EUR", "NL": "EUR", "ES": "EUR", "IT": "EUR", "US": "USD", "GB": "GBP"}
EMAIL_DOMAINS = ["example.com", "mail.example", "example.org", "post.example"]

PRODUCTS = [
    ("apparel", "Merino T-Shirt", 39.90),
    ("apparel", "Rain Jacket", 129.00),
    ("apparel", "Wool Socks (3-pack)", 19.50),
    ("apparel", "Trail Cap", 24.00),
    ("electronics", "Wireless Earbuds", 89.00),
    ("electronics", "USB-C Charger 65W", 45.00),
    ("electronics", "E-Reader", 139.00),
    ("electronics", "Bike Light Set", 34.90),
    ("home", "Ceramic Mug", 14.90),
    ("home", "Pour-Over Coffee Set", 59.00),
    ("home", "Linen Throw", 79.00),
    ("home", "Desk Lamp", 49.90),
    ("outdoor", "Camping Stove", 69.00),
    ("outdoor", "Trekking Poles", 54.00),
    ("outdoor", "Daypack 22L", 95.00),
    ("outdoor", "Insulated Bottle", 29.90),
    ("books", "Field Guide to Birds", 24.90),
    ("books", "Trail Cookbook", 19.90),
    ("books", "Night Sky Atlas", 32.00),
    ("books", "Bike Repair Manual", 17.50),
]
ORDER_STATUSES = ("placed", "paid", "shipped", "delivered", "returned", "cancelled")
ORDER_CHANNELS = {"google_ads": 25, "meta_ads": 20, "newsletter": 10, "affiliate": 10, "organic": 25, "direct": 10}
PAID_CHANNELS = ("google_ads", "meta_ads", "newsletter", "affiliate")

SHOP_FIRST = dt.date(2024, 1, 1)
SHOP_LAST = dt.date(2024, 2, 29)
SHOP_NOW = dt.datetime(2024, 3, 1, tzinfo=UTC)  # the moment the sample was "extracted"


def fx_rates(rng: Random) -> dict[tuple[dt.date, str], Decimal]:
    """EUR per unit of USD and GBP: a small random walk; EUR is 1."""
    rates: dict[tuple[dt.date, str], Decimal] = {}
    usd, gbp = 0.9150, 1.1580
    for d in days(SHOP_FIRST, SHOP_LAST):
        usd += rng.gauss(0, 0.0028)
        gbp += rng.gauss(0, 0.0032)
        rates[(d, "EUR")] = Decimal("1.000000")
        rates[(d, "USD")] = Decimal(f"{usd:.6f}")
        rates[(d, "GBP")] = Decimal(f"{gbp:.6f}")
    return rates


def make_acme_shop() -> None:
    spec = ROOT / "specs"
    rates = fx_rates(Random(20240101))

    # ---- customers
    rng = Random(1)
    countries = [c for c, n in COUNTRIES.items() for _ in range(n)]
    rng.shuffle(countries)
    customers = []
    seen_emails: set[str] = set()
    for index in range(40):
        cid = 101 + index
        first, last = rng.choice(FIRST_NAMES), rng.choice(LAST_NAMES)
        local = ascii_fold(f"{first}.{last}".lower().replace(" ", ""))
        email = f"{local}@{rng.choice(EMAIL_DOMAINS)}"
        while email in seen_emails:
            email = f"{local}{rng.randint(2, 99)}@{rng.choice(EMAIL_DOMAINS)}"
        seen_emails.add(email)
        if index < 35:  # most customers signed up in 2023, a few during the sample period
            created = dt.datetime(2023, 2, 1, tzinfo=UTC) + dt.timedelta(minutes=rng.randint(0, 320 * 24 * 60))
        else:
            created = dt.datetime(2024, 1, 2, tzinfo=UTC) + dt.timedelta(minutes=rng.randint(0, 50 * 24 * 60))
        updated = created + dt.timedelta(minutes=rng.randint(0, 60 * 24 * 40))
        updated = min(updated, SHOP_NOW - dt.timedelta(hours=1))
        customers.append(
            {
                "customer_id": cid,
                "email": email,
                "first_name": first,
                "last_name": last,
                "country_code": countries[index],
                "created_at": created,
                "updated_at": updated,
            }
        )
    # dirty rows: what the shop's sign-up form let through; silver trims and lower-cases e-mails
    customers[3]["email"] = "  " + customers[3]["email"].title() + " "
    customers[17]["email"] = customers[17]["email"].upper()
    customers[28]["email"] = customers[28]["email"] + "  "

    # ---- products
    rng = Random(2)
    products = []
    for index, (category, name, price) in enumerate(PRODUCTS):
        pid = 1 + index
        created = dt.datetime(2023, 1, 15, tzinfo=UTC) + dt.timedelta(
            days=rng.randint(0, 300), hours=rng.randint(8, 17)
        )
        updated = dt.datetime(2023, 12, 1, tzinfo=UTC) + dt.timedelta(days=rng.randint(0, 80), hours=rng.randint(8, 17))
        products.append(
            {
                "product_id": pid,
                "sku": f"ACM-{category[:3].upper()}-{pid:03d}",
                "name": name,
                "category": category,
                "unit_price_eur": money(price),
                "active": True,
                "created_at": created,
                "updated_at": updated,
            }
        )
    products[7]["active"] = False  # discontinued, still on old orders
    products[12]["category"] = "Outdoor"  # a catalogue import wrote this one capitalised

    # ---- orders and order_items
    rng = Random(3)
    moments = sorted(
        dt.datetime.combine(SHOP_FIRST, dt.time(), UTC) + dt.timedelta(seconds=rng.randint(0, 60 * 86400 - 1))
        for _ in range(300)
    )
    affinity = {c["customer_id"]: rng.choice([1, 1, 1, 2, 2, 3, 5]) for c in customers}
    test_orders = {57, 212}  # QA orders placed on production (index in time order)
    orders, items = [], []
    for index, created in enumerate(moments):
        oid = 10001 + index
        eligible = [c for c in customers if c["created_at"] < created]
        customer = rng.choices(eligible, weights=[affinity[c["customer_id"]] for c in eligible])[0]
        currency = CURRENCY[customer["country_code"]]
        age = (SHOP_NOW - created).total_seconds() / 86400
        roll = rng.random()
        if roll < 0.05:
            status, delay = "cancelled", dt.timedelta(hours=rng.randint(1, 48))
        elif age < 1:
            status = "placed" if roll < 0.45 else "paid"
            delay = dt.timedelta(minutes=rng.randint(0, 3) if status == "placed" else rng.randint(2, 20))
        elif age < 3:
            status = "paid" if roll < 0.4 else "shipped"
            delay = (
                dt.timedelta(minutes=rng.randint(2, 20))
                if status == "paid"
                else dt.timedelta(hours=rng.randint(20, 44))
            )
        elif age < 7:
            status = "shipped" if roll < 0.5 else "delivered"
            delay = dt.timedelta(hours=rng.randint(20, 44) if status == "shipped" else rng.randint(60, 120))
        elif roll < 0.11 and age > 21:
            status, delay = "returned", dt.timedelta(days=rng.randint(9, 20))
        else:
            status, delay = "delivered", dt.timedelta(hours=rng.randint(60, 140))
        is_test = index in test_orders
        if is_test:
            status, delay = "paid", dt.timedelta(minutes=rng.randint(1, 5))
        updated = min(created + delay, SHOP_NOW - dt.timedelta(minutes=5))
        channel = "direct" if is_test else weighted(rng, ORDER_CHANNELS)

        amount = Decimal("0.00")
        if not is_test:  # test orders are created by QA through the API, without lines
            rate = rates[(created.date(), currency)]
            n_lines = rng.choices([1, 2, 3, 4, 5], weights=[25, 30, 25, 12, 8])[0]
            for line_number, product in enumerate(rng.sample(products, n_lines), start=1):
                qty = rng.choices([1, 2, 3, 5], weights=[70, 20, 8, 2])[0]
                unit_price = money(product["unit_price_eur"] / rate)
                discount = money(qty * unit_price * Decimal("0.10")) if rng.random() < 0.12 else money(0)
                amount += qty * unit_price - discount
                items.append(
                    {
                        "order_id": oid,
                        "line_number": line_number,
                        "product_id": product["product_id"],
                        "qty": qty,
                        "unit_price": unit_price,
                        "discount": discount,
                        "updated_at": created + dt.timedelta(seconds=rng.randint(1, 40)),
                    }
                )
        else:
            amount = money(rng.choice([1, 9.99, 0.5]))
        orders.append(
            {
                "order_id": oid,
                "customer_id": customer["customer_id"],
                "status": status,
                "channel": channel,
                "currency": currency,
                "amount": money(amount),
                "is_test": is_test,
                "created_at": created,
                "updated_at": updated,
            }
        )
    # dirty rows: the legacy checkout service writes upper-case states; silver lower-cases them
    spelled = {"paid": "PAID", "shipped": "Shipped", "delivered": "DELIVERED", "cancelled": "CANCELLED"}
    for index in (8, 95, 160, 233, 281, 296):
        status = orders[index]["status"]
        orders[index]["status"] = spelled.get(status, status.upper())

    out = fresh_dir(spec / "data" / "shop_db")
    columns = ["customer_id", "email", "first_name", "last_name", "country_code", "created_at", "updated_at"]
    report(
        out / "customers.csv", write_csv(out / "customers.csv", columns, ([c[k] for k in columns] for c in customers))
    )
    columns = ["product_id", "sku", "name", "category", "unit_price_eur", "active", "created_at", "updated_at"]
    report(out / "products.csv", write_csv(out / "products.csv", columns, ([p[k] for k in columns] for p in products)))
    columns = [
        "order_id",
        "customer_id",
        "status",
        "channel",
        "currency",
        "amount",
        "is_test",
        "created_at",
        "updated_at",
    ]
    report(out / "orders.csv", write_csv(out / "orders.csv", columns, ([o[k] for k in columns] for o in orders)))
    columns = ["order_id", "line_number", "product_id", "qty", "unit_price", "discount", "updated_at"]
    report(
        out / "order_items.csv", write_csv(out / "order_items.csv", columns, ([i[k] for k in columns] for i in items))
    )

    # ---- fx_rates: cursor-paginated API responses
    rng = Random(4)
    records = []
    for (rate_day, currency), rate in sorted(
        rates.items(), key=lambda kv: (kv[0][0], ["EUR", "USD", "GBP"].index(kv[0][1]))
    ):
        published = dt.datetime.combine(rate_day, dt.time(16, 0), UTC) + dt.timedelta(seconds=rng.randint(0, 600))
        records.append(
            {
                "rate_date": day(rate_day),
                "currency": currency,
                "rate_to_eur": float(rate),
                "published_at": ts(published),
            }
        )
        if (rate_day, currency) == (dt.date(2024, 1, 15), "GBP"):
            # the provider re-published a corrected rate the next morning; silver keeps the latest
            records.append(
                {
                    "rate_date": day(rate_day),
                    "currency": currency,
                    "rate_to_eur": float(rate + Decimal("0.001200")),
                    "published_at": ts(dt.datetime(2024, 1, 16, 8, 5, tzinfo=UTC)),
                }
            )
    records[40]["currency"] = "usd"  # one lower-case symbol; silver upper-cases it
    out = fresh_dir(spec / "data" / "fx_rates")
    page_size = 75
    pages = [records[i : i + page_size] for i in range(0, len(records), page_size)]
    for number, page in enumerate(pages, start=1):
        offset = number * page_size
        next_cursor = (
            base64.urlsafe_b64encode(json.dumps({"offset": offset}).encode()).decode().rstrip("=")
            if number < len(pages)
            else None
        )
        body = {"data": {"base": "EUR", "rates": page}, "meta": {"count": len(page), "next_cursor": next_cursor}}
        path = out / "daily_rates" / page_name(number)
        write_json(path, body)
        report(path, len(page))

    # ---- marketing spend, one CSV per month
    rng = Random(5)
    spend_rows: dict[str, list[list[object]]] = {}
    for d in days(SHOP_FIRST, SHOP_LAST):
        weekend = d.weekday() >= 5
        for channel in PAID_CHANNELS:
            if channel == "google_ads":
                spend = rng.uniform(160, 420) * (0.8 if weekend else 1.0)
                impressions = int(spend * rng.uniform(45, 70))
                ctr = rng.uniform(0.018, 0.035)
                campaign = "search_brand" if d.day % 3 else "search_generic"
            elif channel == "meta_ads":
                spend = rng.uniform(90, 300) * (1.2 if weekend else 1.0)
                impressions = int(spend * rng.uniform(90, 140))
                ctr = rng.uniform(0.006, 0.014)
                campaign = "winter_outdoor" if d.month == 1 else "spring_preview"
            elif channel == "newsletter":
                send_day = d.weekday() in (1, 4)  # Tuesday and Friday mailings
                spend = 45.0 if send_day else 0.0
                impressions = rng.randint(5200, 5600) if send_day else 0
                ctr = rng.uniform(0.02, 0.04)
                campaign = "weekly_digest" if send_day else None
            else:
                spend = rng.uniform(25, 120)
                impressions = int(spend * rng.uniform(30, 50))
                ctr = rng.uniform(0.01, 0.02)
                campaign = "partner_network"
            clicks = int(impressions * ctr)
            spend_rows.setdefault(f"{d:%Y-%m}", []).append([d, channel, campaign, money(spend), impressions, clicks])
    # dirty rows: the agency's February export has hand-edited channel labels; silver trims and lower-cases them
    february = spend_rows["2024-02"]
    february[0][1] = "Google_Ads"
    february[9][1] = " meta_ads"
    february[22][1] = "NEWSLETTER"
    out = fresh_dir(spec / "data" / "marketing")
    for month, rows in spend_rows.items():
        path = out / f"spend_{month}.csv"
        report(path, write_csv(path, ["day", "channel", "campaign", "spend_eur", "impressions", "clicks"], rows))

    # ---- web events (JSON lines), one file per month
    rng = Random(6)
    by_id = {p["product_id"]: p for p in products}
    lines_of: dict[int, list[dict[str, object]]] = {}
    for item in items:
        lines_of.setdefault(item["order_id"], []).append(item)
    events: list[dict[str, object]] = []

    def event(kind: str, session: str, customer: int | None, at: dt.datetime, props: dict[str, object]) -> None:
        events.append(
            {
                "event_id": rng_uuid(rng),
                "event_type": kind,
                "session_id": session,
                "customer_id": customer,
                "occurred_at": at,
                "properties": props,
            }
        )

    buyable = [o for o in orders if not o["is_test"] and o["status"].lower() != "cancelled"]
    for order in sorted(rng.sample(buyable, 45), key=lambda o: o["order_id"]):
        session = "s-" + rng_uuid(rng)[:13].replace("-", "")
        at = order["created_at"] - dt.timedelta(minutes=rng.randint(8, 25))
        source = order["channel"] if order["channel"] in PAID_CHANNELS else None
        event("page_view", session, order["customer_id"], at, {"page": "/", "utm_source": source})
        for line in lines_of[order["order_id"]]:
            at += dt.timedelta(seconds=rng.randint(20, 150))
            sku = by_id[line["product_id"]]["sku"]
            event(
                "product_view",
                session,
                order["customer_id"],
                at,
                {"page": f"/products/{sku.lower()}", "product_id": line["product_id"]},
            )
            at += dt.timedelta(seconds=rng.randint(10, 90))
            event(
                "add_to_cart",
                session,
                order["customer_id"],
                at,
                {"product_id": line["product_id"], "quantity": line["qty"]},
            )
        event(
            "checkout",
            session,
            order["customer_id"],
            order["created_at"] - dt.timedelta(seconds=rng.randint(30, 90)),
            {"cart_value": str(order["amount"]), "currency": order["currency"]},
        )
        event(
            "purchase",
            session,
            order["customer_id"],
            order["created_at"],
            {"order_id": order["order_id"], "value": str(order["amount"]), "currency": order["currency"]},
        )
    for _ in range(52):  # browsing sessions that did not buy
        session = "s-" + rng_uuid(rng)[:13].replace("-", "")
        at = dt.datetime.combine(SHOP_FIRST, dt.time(), UTC) + dt.timedelta(seconds=rng.randint(0, 60 * 86400 - 3600))
        known = [c for c in customers if c["created_at"] < at]
        customer = rng.choice(known)["customer_id"] if rng.random() < 0.35 else None
        source = rng.choice([*PAID_CHANNELS, None, None])
        event("page_view", session, customer, at, {"page": "/", "utm_source": source})
        for _ in range(rng.choices([0, 1, 2, 3, 4], weights=[15, 30, 30, 15, 10])[0]):
            at += dt.timedelta(seconds=rng.randint(15, 200))
            product = rng.choice(products)
            event(
                "product_view",
                session,
                customer,
                at,
                {"page": f"/products/{product['sku'].lower()}", "product_id": product["product_id"]},
            )
            if rng.random() < 0.2:
                at += dt.timedelta(seconds=rng.randint(10, 60))
                event("add_to_cart", session, customer, at, {"product_id": product["product_id"], "quantity": 1})
    events.sort(key=lambda e: (e["occurred_at"], e["event_id"]))
    # dirty rows: an SDK version sends upper-case types, and the collector re-delivered one event after a timeout
    events[31]["event_type"] = "PAGE_VIEW"
    events[202]["event_type"] = (
        "Add_To_Cart" if events[202]["event_type"] == "add_to_cart" else events[202]["event_type"].upper()
    )
    events.insert(120, dict(events[119]))
    out = fresh_dir(spec / "data" / "events")
    by_month: dict[str, list[dict[str, object]]] = {}
    for position, e in enumerate(events):
        at = e["occurred_at"]
        # the EU collector stamps local time (CET) on every 7th event: same instant, other offset
        shown = at.astimezone(CET) if position % 7 == 3 else at
        by_month.setdefault(f"{at:%Y-%m}", []).append({**e, "occurred_at": ts(shown)})
    for month, records_ in by_month.items():
        path = out / f"events_{month}.jsonl"
        report(path, write_jsonl(path, records_))


# --------------------------------------------------------------------------- examples/minimal_csv


def make_minimal_csv() -> None:
    rng = Random(10)
    catalogue = {
        "espresso": 2.40,
        "cappuccino": 3.20,
        "flat_white": 3.60,
        "croissant": 2.10,
        "bagel": 3.80,
        "cheesecake": 4.50,
        "orange_juice": 3.90,
    }
    stores = ["downtown", "harbour"]
    rows = []
    receipt = 5001
    for d in days(dt.date(2024, 3, 1), dt.date(2024, 3, 14)):
        for store in stores:
            for _ in range(rng.randint(3, 6)):
                at = dt.datetime.combine(d, dt.time(7), UTC) + dt.timedelta(minutes=rng.randint(0, 11 * 60))
                product = rng.choice(list(catalogue))
                quantity = rng.choices([1, 2, 3], weights=[70, 22, 8])[0]
                rows.append([receipt, at, store, product, quantity, money(catalogue[product] * quantity)])
                receipt += 1
    rows.sort(key=lambda r: (r[1], r[0]))
    # dirty rows: the till at the harbour store types its name by hand
    rows[5][2] = "Harbour"
    rows[40][2] = " harbour "
    rows[77][2] = "DOWNTOWN"
    out = fresh_dir(ROOT / "examples" / "minimal_csv" / "data" / "sales")
    path = out / "sales_2024-03.csv"
    report(path, write_csv(path, ["receipt_id", "sold_at", "store", "product", "quantity", "amount"], rows))


# --------------------------------------------------------------------------- examples/iot_sensors

IOT_SITES = [
    # site_id, code, name, city, country, max allowed temperature, base temperature, humidity base, opened
    (1, "HAM-CS", "Hamburg cold store", "Hamburg", "DE", "8.00", 4.0, 82.0, dt.date(2019, 4, 1)),
    (2, "RTM-DC", "Rotterdam data centre", "Rotterdam", "NL", "27.00", 21.5, 40.0, dt.date(2021, 9, 15)),
    (3, "ALM-GH", "Almería greenhouse", "Almería", "ES", "35.00", 24.0, 65.0, dt.date(2022, 2, 1)),
]
IOT_FIRST = dt.datetime(2024, 5, 1, tzinfo=UTC)
IOT_HOURS = 48


def make_iot_sensors() -> None:
    rng = Random(20)
    base = ROOT / "examples" / "iot_sensors" / "data"
    sites = []
    for site_id, code, name, city, country, max_c, *_rest, opened in IOT_SITES:
        sites.append(
            [
                site_id,
                code,
                name,
                city,
                country,
                Decimal(max_c),
                opened,
                dt.datetime.combine(opened, dt.time(9), UTC) + dt.timedelta(days=rng.randint(30, 300)),
            ]
        )

    devices = []
    models = {"thermometer": "TX-10", "hygrometer": "HX-20", "multi": "MX-30"}
    layout = [1, 1, 1, 1, 2, 2, 2, 2, 3, 3, 3, 3]
    for index, site_id in enumerate(layout):
        device_id = 201 + index
        kind = ("thermometer", "multi", "multi", "hygrometer")[index % 4]
        installed = dt.datetime(2023, 3, 1, tzinfo=UTC) + dt.timedelta(
            days=rng.randint(0, 300), hours=rng.randint(7, 16)
        )
        updated = installed + dt.timedelta(days=rng.randint(1, 200))
        devices.append(
            {
                "device_id": device_id,
                "serial_no": f"SN-{rng.randint(100000, 999999)}",
                "site_id": site_id,
                "device_type": kind,
                "model": models[kind],
                "firmware": rng.choice(["2.3.1", "2.4.0", "2.4.2"]),
                "installed_at": installed,
                "status": "active",
                "updated_at": updated,
            }
        )
    devices[11]["status"] = "retired"  # replaced in April; sends nothing
    devices[11]["updated_at"] = dt.datetime(2024, 4, 22, 14, 30, tzinfo=UTC)
    devices[5]["device_type"] = "Multi"  # typed by hand in the fleet tool; silver lower-cases it

    out = fresh_dir(base / "fleet_db")
    header = [
        "site_id",
        "site_code",
        "site_name",
        "city",
        "country_code",
        "max_temperature_c",
        "opened_on",
        "updated_at",
    ]
    report(out / "sites.csv", write_csv(out / "sites.csv", header, sites))
    header = [
        "device_id",
        "serial_no",
        "site_id",
        "device_type",
        "model",
        "firmware",
        "installed_at",
        "status",
        "updated_at",
    ]
    report(out / "devices.csv", write_csv(out / "devices.csv", header, ([d[k] for k in header] for d in devices)))

    # readings: one per device and hour, with two outages, two heat events and a battery swap
    site_of = {s[0]: s for s in IOT_SITES}
    offline = {207: range(10, 18), 211: range(26, 31)}  # device -> hours without data
    battery = {d["device_id"]: rng.randint(55, 100) for d in devices}
    battery[205] = 14
    readings = []
    for hour in range(IOT_HOURS):
        for d in devices:
            device_id = d["device_id"]
            if d["status"] != "active" or hour in offline.get(device_id, ()):
                continue
            _, _, _, _, _, _, base_c, base_h, _ = site_of[d["site_id"]]
            moment = IOT_FIRST + dt.timedelta(hours=hour, minutes=(device_id * 7) % 60, seconds=rng.randint(0, 20))
            daily = math.sin((moment.hour - 9) / 24 * 2 * math.pi)
            swing = {1: 0.6, 2: 0.8, 3: 7.0}[d["site_id"]]
            temp = base_c + swing * daily + rng.gauss(0, 0.25)
            if device_id == 202 and 14 <= hour <= 16:  # loading-bay door left open at the cold store
                temp = 9.2 + rng.uniform(0, 1.2)
            if d["site_id"] == 3 and hour in (36, 37) and device_id in (209, 210):  # midday heat, second day
                temp = 35.4 + rng.uniform(0, 1.5)
            humidity = None if d["device_type"].lower() == "thermometer" else round(base_h + rng.gauss(0, 2.5), 2)
            if hour % 6 == 0:
                battery[device_id] = max(battery[device_id] - rng.randint(0, 1), 1)
            if device_id == 205 and hour == 33:  # battery swapped (see maintenance log MX-0012)
                battery[device_id] = 100
            readings.append(
                {
                    "reading_id": 0,
                    "device_id": device_id,
                    "measured_at": ts(moment),
                    "temperature_c": round(temp, 2),
                    "humidity_pct": humidity,
                    "battery_pct": battery[device_id],
                }
            )
    readings.sort(key=lambda r: (r["measured_at"], r["device_id"]))
    for number, reading in enumerate(readings, start=900001):
        reading["reading_id"] = number
    out = fresh_dir(base / "sensor_api")
    limit = 100
    for number, start in enumerate(range(0, len(readings), limit), start=1):
        page = readings[start : start + limit]
        path = out / "readings" / page_name(number)
        write_json(path, {"items": page, "offset": start, "limit": limit, "total": len(readings)})
        report(path, len(page))

    # maintenance logs: JSON arrays, one file per month
    technicians = ["Jana Petersen", "Kees Bakker", "Marta Ruiz", "Tom Becker"]
    tech_of_site = {1: [0, 3], 2: [1], 3: [2]}
    logs = []

    def log(device_id: int, action: str, start: dt.datetime, minutes: int, cost: str | None, notes: str | None) -> None:
        site = next(d["site_id"] for d in devices if d["device_id"] == device_id)
        logs.append(
            {
                "log_id": "",
                "device_id": device_id,
                "technician": technicians[rng.choice(tech_of_site[site])],
                "action": action,
                "started_at": start,
                "finished_at": start + dt.timedelta(minutes=minutes),
                "parts_cost_eur": cost,
                "notes": notes,
            }
        )

    log(201, "calibration", dt.datetime(2024, 4, 3, 8, 30, tzinfo=UTC), 35, None, "Quarterly calibration")
    log(202, "calibration", dt.datetime(2024, 4, 3, 9, 15, tzinfo=UTC), 30, None, "Quarterly calibration")
    log(206, "inspection", dt.datetime(2024, 4, 9, 13, 0, tzinfo=UTC), 20, None, None)
    log(207, "repair", dt.datetime(2024, 4, 11, 10, 5, tzinfo=UTC), 95, "42.50", "Replaced antenna connector")
    log(
        212,
        "replacement",
        dt.datetime(2024, 4, 22, 13, 40, tzinfo=UTC),
        50,
        "189.00",
        "Retired after sensor drift; replaced by a new unit",
    )
    log(209, "inspection", dt.datetime(2024, 4, 24, 7, 45, tzinfo=UTC), 15, None, "Shade net check")
    log(210, "calibration", dt.datetime(2024, 4, 24, 8, 10, tzinfo=UTC), 40, None, None)
    log(203, "battery_swap", dt.datetime(2024, 4, 29, 15, 20, tzinfo=UTC), 10, "6.90", None)
    log(
        207,
        "repair",
        dt.datetime(2024, 5, 1, 16, 40, tzinfo=UTC),
        70,
        "18.00",
        "Gateway power supply failed; back online 18:00",
    )
    log(
        202,
        "inspection",
        dt.datetime(2024, 5, 1, 17, 10, tzinfo=UTC),
        25,
        None,
        "Temperature alarm: loading-bay door left open",
    )
    log(
        211,
        "repair",
        dt.datetime(2024, 5, 2, 6, 30, tzinfo=UTC),
        45,
        None,
        "Firmware hang; power-cycled and updated to 2.4.2",
    )
    log(205, "battery_swap", dt.datetime(2024, 5, 2, 9, 5, tzinfo=UTC), 12, "6.90", "Low-battery warning")
    log(209, "inspection", dt.datetime(2024, 5, 2, 14, 0, tzinfo=UTC), 30, None, "Heat alarm: vents opened")
    log(204, "calibration", dt.datetime(2024, 5, 2, 15, 30, tzinfo=UTC), 35, None, None)
    for number, entry in enumerate(logs, start=1):
        entry["log_id"] = f"MX-{number:04d}"
    out = fresh_dir(base / "maintenance")
    for month in ("2024-04", "2024-05"):
        chosen = [
            {
                **e,
                "started_at": ts(e["started_at"]),
                "finished_at": ts(e["finished_at"]),
                "parts_cost_eur": float(e["parts_cost_eur"]) if e["parts_cost_eur"] else None,
            }
            for e in logs
            if f"{e['started_at']:%Y-%m}" == month
        ]
        path = out / f"maintenance_{month}.json"
        write_json(path, chosen)
        report(path, len(chosen))


# --------------------------------------------------------------------------- examples/saas_billing

SAAS_PLANS = [
    (1, "starter", "Starter", "19.00", 1),
    (2, "team", "Team", "12.00", 3),
    (3, "business", "Business", "24.00", 10),
    (4, "enterprise", "Enterprise", "39.00", 50),
]
SAAS_FIRST = dt.date(2023, 10, 1)
SAAS_LAST = dt.date(2024, 3, 31)


def month_starts(first: dt.date, last: dt.date) -> list[dt.date]:
    out, current = [], first.replace(day=1)
    while current <= last:
        out.append(current)
        current = (current + dt.timedelta(days=32)).replace(day=1)
    return out


def make_saas_billing() -> None:
    rng = Random(30)
    base = ROOT / "examples" / "saas_billing" / "data"
    now = dt.datetime(2024, 4, 1, 2, 0, tzinfo=UTC)
    plans = [[pid, code, name, Decimal(price), min_seats] for pid, code, name, price, min_seats in SAAS_PLANS]

    words = [
        "Blue",
        "North",
        "Pixel",
        "Quartz",
        "River",
        "Summit",
        "Cedar",
        "Delta",
        "Harbor",
        "Nimbus",
        "Orbit",
        "Maple",
        "Atlas",
        "Vertex",
        "Lumen",
        "Falcon",
    ]
    kinds = ["Labs", "Logistics", "Studio", "Analytics", "Health", "Foods", "Systems", "Works"]
    accounts = []
    for index in range(24):
        aid = 501 + index
        name = f"{words[index % len(words)]} {rng.choice(kinds)}"
        segment = rng.choices(["smb", "mid_market", "enterprise"], weights=[60, 30, 10])[0]
        created = dt.datetime(2023, 6, 1, tzinfo=UTC) + dt.timedelta(minutes=rng.randint(0, 200 * 1440))
        domain = name.lower().replace(" ", "") + ".example"
        accounts.append(
            {
                "account_id": aid,
                "company_name": name,
                "billing_email": f"billing@{domain}",
                "country_code": rng.choice(["DE", "FR", "NL", "GB", "US", "SE", "PL"]),
                "segment": segment,
                "created_at": created,
                "updated_at": created + dt.timedelta(days=rng.randint(0, 90)),
            }
        )
    accounts[6]["billing_email"] = " Billing@" + accounts[6]["billing_email"].split("@")[1]

    subscriptions, invoices = [], []
    for account in accounts:
        sid = 3001 + len(subscriptions)
        plan = {"smb": rng.choice(plans[:2]), "mid_market": rng.choice(plans[1:3]), "enterprise": plans[3]}[
            account["segment"]
        ]
        seats = max(
            plan[4],
            {"smb": rng.randint(1, 6), "mid_market": rng.randint(8, 40), "enterprise": rng.randint(50, 180)}[
                account["segment"]
            ],
        )
        started = max(account["created_at"].date() + dt.timedelta(days=rng.randint(0, 14)), SAAS_FIRST)
        cancelled = None
        roll = rng.random()
        if roll < 0.17:
            cancelled = started + dt.timedelta(days=rng.randint(45, 150))
            cancelled = cancelled if cancelled < SAAS_LAST else None
        status = "cancelled" if cancelled else ("past_due" if roll > 0.9 else "active")
        sub = {
            "subscription_id": sid,
            "account_id": account["account_id"],
            "plan_id": plan[0],
            "status": status,
            "seats": seats,
            "started_on": started,
            "cancelled_on": cancelled,
            "updated_at": dt.datetime.combine(cancelled or started, dt.time(10), UTC)
            + dt.timedelta(minutes=rng.randint(0, 400)),
        }
        subscriptions.append(sub)
        for month in month_starts(started, (cancelled or SAAS_LAST)):
            issued = max(month, started)
            if cancelled and issued >= cancelled:
                break
            amount = money(plan[3] * seats)
            due = issued + dt.timedelta(days=14)
            retried = rng.random() < 0.1  # the first card charge failed; the customer paid days later
            paid_at = dt.datetime.combine(issued, dt.time(6, 30), UTC) + dt.timedelta(
                days=rng.randint(2, 20) if retried else rng.randint(0, 3), minutes=rng.randint(0, 600)
            )
            inv_status = "paid"
            if (status == "past_due" and month >= dt.date(2024, 2, 1)) or paid_at >= now:
                inv_status, paid_at = "open", None
            invoices.append(
                {
                    "invoice_id": 0,
                    "subscription_id": sid,
                    "account_id": account["account_id"],
                    "issued_on": issued,
                    "due_on": due,
                    "amount_eur": amount,
                    "status": inv_status,
                    "paid_at": paid_at,
                    "updated_at": paid_at or dt.datetime.combine(issued, dt.time(6), UTC),
                    "retried": retried,
                }
            )
    invoices.sort(key=lambda i: (i["issued_on"], i["subscription_id"]))
    for number, inv in enumerate(invoices, start=70001):  # the billing system numbers invoices as it issues them
        inv["invoice_id"] = number
    invoices[10]["status"] = "void"  # issued by mistake and voided
    invoices[10]["paid_at"] = None
    invoices[10]["updated_at"] = dt.datetime.combine(invoices[10]["issued_on"], dt.time(12), UTC)

    out = fresh_dir(base / "billing_db")
    report(
        out / "plans.csv",
        write_csv(out / "plans.csv", ["plan_id", "plan_code", "plan_name", "seat_price_eur", "min_seats"], plans),
    )
    header = ["account_id", "company_name", "billing_email", "country_code", "segment", "created_at", "updated_at"]
    report(out / "accounts.csv", write_csv(out / "accounts.csv", header, ([a[k] for k in header] for a in accounts)))
    header = ["subscription_id", "account_id", "plan_id", "status", "seats", "started_on", "cancelled_on", "updated_at"]
    report(
        out / "subscriptions.csv",
        write_csv(out / "subscriptions.csv", header, ([s[k] for k in header] for s in subscriptions)),
    )
    header = [
        "invoice_id",
        "subscription_id",
        "account_id",
        "issued_on",
        "due_on",
        "amount_eur",
        "status",
        "paid_at",
        "updated_at",
    ]
    report(out / "invoices.csv", write_csv(out / "invoices.csv", header, ([i[k] for k in header] for i in invoices)))

    # payments API: one charge per paid invoice, plus failed attempts; link-header pagination (bodies only)
    charges = []
    for inv in invoices:
        if inv["status"] == "void":
            continue
        attempt = dt.datetime.combine(inv["issued_on"], dt.time(6, 5), UTC)
        if inv["status"] == "open" or inv["retried"]:
            charges.append(
                {
                    "charge_id": "",
                    "invoice_id": inv["invoice_id"],
                    "amount_cents": int(inv["amount_eur"] * 100),
                    "currency": "eur",
                    "status": "failed",
                    "failure_code": rng.choice(["card_declined", "insufficient_funds", "expired_card"]),
                    "created_at": attempt,
                }
            )
        if inv["paid_at"]:
            charges.append(
                {
                    "charge_id": "",
                    "invoice_id": inv["invoice_id"],
                    "amount_cents": int(inv["amount_eur"] * 100),
                    "currency": "eur",
                    "status": "succeeded",
                    "failure_code": None,
                    "created_at": inv["paid_at"],
                }
            )
    charges.sort(key=lambda c: (c["created_at"], c["invoice_id"]))
    charges = [c for c in charges if c["created_at"] < now]
    for c in charges:
        c["charge_id"] = "ch_" + rng_uuid(rng).replace("-", "")[:20]
        c["created_at"] = ts(c["created_at"])
    refunded = next(c for c in charges if c["status"] == "succeeded" and c["invoice_id"] > invoices[30]["invoice_id"])
    refunded["status"] = "refunded"
    out = fresh_dir(base / "payments_api")
    size = 50
    for number, start in enumerate(range(0, len(charges), size), start=1):
        page = charges[start : start + size]
        path = out / "charges" / page_name(number)
        write_json(path, {"object": "list", "data": page})
        report(path, len(page))

    # product usage: semicolon-separated daily exports
    usage: dict[str, list[list[object]]] = {}
    for d in days(dt.date(2024, 3, 1), SAAS_LAST):
        for sub in subscriptions:
            if sub["status"] == "cancelled" or sub["started_on"] > d:
                continue
            if d.weekday() >= 5 and rng.random() < 0.6:
                continue
            active = max(0, int(sub["seats"] * rng.uniform(0.3, 0.95)))
            usage.setdefault(f"{d:%Y-%m}", []).append([d, sub["account_id"], active, active * rng.randint(5, 60)])
    out = fresh_dir(base / "usage")
    for month, rows in usage.items():
        path = out / f"usage_{month}.csv"
        report(path, write_csv(path, ["day", "account_id", "active_users", "api_calls"], rows, delimiter=";"))


# --------------------------------------------------------------------------- main


def main() -> None:
    make_acme_shop()
    make_minimal_csv()
    make_iot_sensors()
    make_saas_billing()
    width = max(len(p) for p, _ in REPORT)
    for path, rows in REPORT:
        print(f"{path:<{width}}  {rows:>5} rows")


if __name__ == "__main__":
    main()
