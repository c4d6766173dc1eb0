"""`platformgen init`: a starter spec that validates and compiles, with sample data."""

from __future__ import annotations

from pathlib import Path

from platformgen.errors import PlatformgenError
from platformgen.spec.reference import json_schema_text

MODELINE = "# yaml-language-server: $schema={}platformgen.schema.json\n"

PLATFORM = """\
platform:
  name: {name}
  description: Starter platform created by platformgen init
  owner: data-platform

orchestration:
  defaults: {{owner: data-platform, retries: 2, retry_delay: 5m}}

warehouse:
  connection:
    host: env:WAREHOUSE_HOST
    port: env:WAREHOUSE_PORT
    database: warehouse
    user: env:WAREHOUSE_USER
    password: env:WAREHOUSE_PASSWORD

alerting:
  email: {{to: [data-oncall@example.com]}}
  slack: {{channel: "#data-alerts", webhook: env:SLACK_WEBHOOK_URL}}

governance:
  teams:
    data-platform: {{description: Owns the platform, members: [you@example.com]}}
"""

SOURCES = """\
sources:
  - name: sales
    kind: file
    description: Daily sales exports dropped as CSV files
    location: data/sales
    sample: data/sales
    format: csv
    schedule: "@daily"
    tables:
      - name: orders
        pattern: "orders_*.csv"
        primary_key: [order_id]
        columns:
          order_id: bigint
          customer: {{type: string, classification: pii}}
          status: {{type: string, accepted_values: [paid, refunded]}}
          amount: {{type: "decimal(12,2)", nullable: false, range: {{min: 0}}}}
          ordered_at: timestamptz
        silver:
          case: {{status: lower}}
"""

MODELS = """\
models:
  - name: daily_sales
    description: Revenue and orders per day
    aggregate:
      from: sales.orders
      time: {{column: ordered_at, grain: day}}
      measures:
        revenue: sum(amount)
        orders: count(*)
      filter: status = 'paid'
    expectations:
      - {{row_count: {{min: 1}}}}
      - {{column: revenue, not_null: true, range: {{min: 0}}}}
    sla: {{warn_after: 26h, error_after: 48h, notify: [slack]}}

dashboards:
  - name: sales
    title: Sales
    charts:
      - {{title: Revenue, type: line, model: daily_sales, x: day, metric: sum(revenue), time_grain: day}}
      - {{title: Orders, type: big_number, model: daily_sales, metric: sum(orders)}}
"""

SAMPLE = """\
order_id,customer,status,amount,ordered_at
1,alice@example.com,paid,19.90,2024-01-01T09:30:00+00:00
2,bob@example.com,PAID,5.00,2024-01-01T11:02:00+00:00
3,carol@example.com,refunded,12.50,2024-01-02T15:45:00+00:00
4,alice@example.com,paid,42.00,2024-01-02T18:20:00+00:00
"""


def scaffold(directory: Path, *, force: bool = False) -> list[Path]:
    """Write the starter spec into `directory`; refuse a non-empty folder unless forced."""
    if directory.exists() and not directory.is_dir():
        raise PlatformgenError(f"{directory} exists and is not a folder")
    if directory.is_dir() and any(directory.iterdir()) and not force:
        raise PlatformgenError(f"{directory} is not empty: choose a new folder or pass --force")
    name = "".join(c if c.isalnum() else "_" for c in directory.resolve().name.lower()).strip("_") or "platform"
    if not name[0].isalpha():
        name = f"p_{name}"
    name = name.replace("__", "_")[:40]
    files = {
        "platform.yaml": MODELINE.format("") + PLATFORM.format(name=name),
        "sources/sales.yaml": MODELINE.format("../") + SOURCES.format(),
        "models/sales.yaml": MODELINE.format("../") + MODELS.format(),
        "data/sales/orders_2024-01-01.csv": SAMPLE,
        "platformgen.schema.json": json_schema_text(),
    }
    written: list[Path] = []
    for rel, text in files.items():
        path = directory / rel
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(text, encoding="utf-8")
        written.append(path)
    return written
