"""The dbt target: generated SQL and YAML of a small spec, Jinja escaping, and `dbt parse` of every spec."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
from pathlib import Path
from typing import Any

import jinja2
import pytest
from hypothesis import given
from hypothesis import strategies as st
from ruamel.yaml import YAML
from typer.testing import CliRunner

from platformgen.cli import app
from platformgen.compiler import Compiled, compile_spec
from platformgen.targets.dbt_models import escape_jinja, jinja_argument
from platformgen.writer import write_files

REPO = Path(__file__).resolve().parents[1]
SPECS = [REPO / "specs", *sorted(p for p in (REPO / "examples").iterdir() if p.is_dir())]
INJECTED = "{{ env_var('HOME') }}"

#: A small spec that exercises every silver rule, every check kind, both kinds of model, and tries to
#: smuggle Jinja into the dbt project through SQL literals, descriptions, filters, measures and conditions.
SPEC = r"""
platform:
  name: unit_shop
  owner: ops@unit.example
warehouse:
  connection: {host: db.internal, port: 6543, database: dwh, user: env:DWH_USER, password: env:DWH_PASSWORD}
  schemas: {raw: landing, staging: silver, intermediate: work, marts: gold}
governance:
  teams:
    sales: {email: sales@unit.example}
  roles:
    analyst: {superset: Analyst, sql_lab: true, schemas: [gold]}
sources:
  - name: shop
    kind: postgres
    owner: sales
    sample: data/shop
    connection: {host: env:SHOP_HOST, database: shop, user: env:SHOP_USER, password: env:SHOP_PASSWORD}
    tables:
      - name: orders
        description: "Orders {{ env_var('HOME') }} {% if true %}x{% endif %}"
        primary_key: [order_id]
        incremental: {cursor: updated_at}
        columns:
          order_id: bigint
          customer_id: {type: bigint, nullable: false}
          status: {type: string, accepted_values: [open, "o'clock", "{{ bad }}"], severity: warn}
          amount: {type: "decimal(12,2)", range: {min: 0, max: 1000, strict: true}}
          note: string
          code: integer
          is_test: boolean
          created_at: timestamptz
          updated_at: timestamptz
        silver:
          rename: {amount: amount_eur, created_at: ordered_at}
          cast: {code: string}
          trim: [note, code]
          case: {status: lower}
          filter: "not is_test and note <> '{{ secret }}'"
          materialized: incremental
        expectations:
          - {column: note, regex: "^[a-z{%]*$", severity: warn}
          - {row_count: {min: 1, max: 100}}
          - {name: orders_fresh, freshness: {column: updated_at, warn_after: 90m, error_after: 2d}}
          - {column: customer_id, relationships: {to: shop.customers}, severity: warn}
          - {name: amount_positive, sql: "amount_eur > 0 or note = '{{ x }}'"}
        sla: {warn_after: 90m, error_after: 3h}
      - name: customers
        primary_key: [customer_id]
        columns:
          customer_id: bigint
          email: {type: string, classification: pii, description: "Login {# not a comment #}"}
          region: string
          updated_at: timestamptz
        silver:
          case: {email: upper}
          dedup: {by: updated_at, keep: earliest}
        expectations:
          - {columns: [customer_id, region], unique: true}
models:
  - name: int_orders
    layer: intermediate
    sql: |
      select o.order_id, o.customer_id, c.region, o.amount_eur, o.ordered_at,
             '{{ env_var("HOME") }}' as injected, '{% raw %}' as raw_tag
      from shop.orders o
      join shop.customers c on c.customer_id = o.customer_id
  - name: hourly_orders
    description: "Orders per hour {{ 1 + 1 }}"
    aggregate:
      from: int_orders
      time: {column: ordered_at, grain: hour}
      dimensions: [region]
      measures: {orders: count(*), revenue: sum(amount_eur), label: "max('{{ x }}')"}
      filter: "amount_eur > 0"
  - name: daily_orders
    materialized: incremental
    unique_key: [day, region_code]
    aggregate:
      from: shop.orders
      time: {column: ordered_at, grain: day}
      dimensions: [{name: region_code, expr: "upper(coalesce(note, 'none'))"}]
      measures: {orders: count(*), amount: sum(amount_eur)}
    columns:
      orders: {type: integer, description: Declared integer although count(*) is a bigint.}
  - name: order_flags
    sql: |
      select order_id, num_nonnulls(region, injected) as filled, injected
      from int_orders
dashboards:
  - name: sales
    title: Sales
    owner: sales
    charts:
      - {title: Revenue, type: line, model: hourly_orders, x: hour, metric: sum(revenue)}
      - {title: Flags, type: table, model: order_flags, columns: [order_id, filled]}
"""

ORDERS_CSV = """\
order_id,customer_id,status,amount,note,code,is_test,created_at,updated_at
1,10,OPEN,12.50,abc,7,false,2024-03-01T10:15:00+00:00,2024-03-01T10:15:00+00:00
2,11,open,20.00,{{ secret }},8,false,2024-03-01T11:05:00+00:00,2024-03-01T11:05:00+00:00
3,10,o'clock,7.25, de ,9,false,2024-03-01T11:45:00+00:00,2024-03-01T11:45:00+00:00
3,10,open,7.25,de,9,false,2024-03-01T11:45:00+00:00,2024-03-01T11:40:00+00:00
4,12,open,99.00,x,1,true,2024-03-02T09:00:00+00:00,2024-03-02T09:00:00+00:00
5,12,{{ bad }},5.00,zz,2,false,2024-03-02T09:30:00+00:00,2024-03-02T09:30:00+00:00
"""
CUSTOMERS_CSV = """\
customer_id,email,region,updated_at
10, ann@x.example ,north,2024-01-01T00:00:00+00:00
10,ann.new@x.example,north,2024-02-01T00:00:00+00:00
11,bob@x.example,south,2024-01-01T00:00:00+00:00
12,cid@x.example,south,2024-01-01T00:00:00+00:00
"""


def write_unit_spec(folder: Path) -> Path:
    """The spec above with its sample data, in `folder`."""
    (folder / "data" / "shop").mkdir(parents=True)
    (folder / "platform.yaml").write_text(SPEC)
    (folder / "data" / "shop" / "orders.csv").write_text(ORDERS_CSV)
    (folder / "data" / "shop" / "customers.csv").write_text(CUSTOMERS_CSV)
    return folder


@pytest.fixture(scope="module")
def unit(tmp_path_factory: pytest.TempPathFactory) -> Compiled:
    return compile_spec(write_unit_spec(tmp_path_factory.mktemp("unit_spec")))


def dbt_file(compiled: Compiled, path: str) -> str:
    """A generated file without the writer's two header lines."""
    return compiled.outputs["dbt"][f"dbt/{path}"].split("\n", 2)[2]


def load_yaml(compiled: Compiled, path: str) -> Any:
    return YAML(typ="safe").load(dbt_file(compiled, path))


def checks_by_name(document: dict[str, Any]) -> dict[str, tuple[str, str | None, dict[str, Any]]]:
    """check id -> (test macro, column or None, arguments and config) of every test in a schema.yml."""
    found: dict[str, tuple[str, str | None, dict[str, Any]]] = {}
    for model in document["models"]:
        entries = [(None, t) for t in model.get("data_tests", [])]
        entries += [(c["name"], t) for c in model["columns"] for t in c.get("data_tests", [])]
        for column, test in entries:
            [(macro, body)] = test.items()
            found[body["name"]] = (macro, column, body)
    return found


# --------------------------------------------------------------------------- staging


def test_staging_model_applies_the_silver_rules(unit: Compiled) -> None:
    sql = dbt_file(unit, "models/staging/stg_shop__orders.sql")
    assert sql.startswith(
        "{{ config(materialized='incremental', unique_key='order_id', incremental_strategy='delete+insert', "
        "on_schema_change='append_new_columns') }}\n"
    )
    assert "from {{ source('raw', 'shop__orders') }}" in sql
    # the filter is on source names, parenthesised, its Jinja-looking literal escaped
    assert "where (NOT is_test AND note <> '{{ '{' }}{ secret }}')" in sql
    assert '{% if is_incremental() %}\n      and "_ingested_at" >= (select max("_ingested_at") from {{ this }})' in sql
    # renames and casts to the declared (or cast) types; trim only on the listed columns; case
    assert 'cast("amount" as numeric(12,2)) as "amount_eur",' in sql
    assert 'cast("created_at" as timestamptz) as "ordered_at",' in sql
    assert 'trim(cast("code" as text)) as "code",' in sql
    assert 'trim(cast("note" as text)) as "note",' in sql
    assert 'lower(cast("status" as text)) as "status",' in sql
    # dedup by the primary key, the latest by the incremental cursor, existing rows competing
    assert 'partition by "order_id"\n            order by "updated_at" desc nulls last, "_ingested_at" desc' in sql
    assert 'where ("order_id") in (select "order_id" from renamed)' in sql
    assert sql.rstrip().endswith('from deduplicated\nwhere "_row_number" = 1')


def test_staging_dedup_earliest_and_default_trim(unit: Compiled) -> None:
    sql = dbt_file(unit, "models/staging/stg_shop__customers.sql")
    assert sql.startswith("{{ config(materialized='view') }}\n")
    assert "is_incremental" not in sql
    assert 'upper(trim(cast("email" as text))) as "email",' in sql
    assert 'trim(cast("region" as text)) as "region",' in sql
    assert 'order by "updated_at" asc nulls last, "_ingested_at" desc' in sql
    assert "from renamed\n\n)" in sql  # no incremental candidates


# --------------------------------------------------------------------------- tests and docs


def test_checks_become_dbt_tests_with_names_and_severities(unit: Compiled) -> None:
    staging = checks_by_name(load_yaml(unit, "models/staging/_staging.yml"))
    assert staging["shop__orders__not_null__order_id"][:2] == ("not_null", "order_id")
    assert staging["shop__orders__unique__order_id"][2]["config"] == {"severity": "error"}
    macro, column, body = staging["shop__orders__accepted_values__status"]
    assert (macro, column) == ("accepted_values", "status")
    assert body["values"] == ["open", "o''clock", "{{ '{' }}{ bad }}"]
    assert body["config"] == {"severity": "warn"}
    _, column, body = staging["shop__orders__range__amount_eur"]
    assert column == "amount_eur"
    assert (body["min_value"], body["max_value"], body["strict"]) == (0, 1000, True)
    assert staging["shop__orders__regex__note"][2]["pattern"] == "^[a-z{{ '{' }}%]*$"
    assert staging["shop__orders__row_count"][2] == {
        "name": "shop__orders__row_count",
        "min_value": 1,
        "max_value": 100,
        "config": {"severity": "error"},
    }
    macro, column, body = staging["orders_fresh"]
    assert (macro, column) == ("fresh_within", None)
    assert body["column"] == "updated_at"
    assert (body["warn_after_seconds"], body["error_after_seconds"]) == (5400, 172800)
    assert body["config"] == {"severity": "error", "warn_if": ">=1", "error_if": ">=2"}
    macro, column, body = staging["shop__orders__relationships__customer_id"]
    assert (macro, column, body["to"], body["field"]) == (
        "relationships",
        "customer_id",
        "ref('stg_shop__customers')",
        "customer_id",
    )
    assert body["config"] == {"severity": "warn"}
    assert staging["amount_positive"][2]["expression"] == "amount_eur > 0 OR note = '{{ '{' }}{ x }}'"
    macro, _, body = staging["shop__customers__unique__customer_id_region"]
    assert (macro, body["combination_of_columns"]) == ("unique_combination_of_columns", ["customer_id", "region"])


def test_models_carry_docs_meta_and_loaded_at(unit: Compiled) -> None:
    staging = {m["name"]: m for m in load_yaml(unit, "models/staging/_staging.yml")["models"]}
    orders = staging["stg_shop__orders"]
    assert orders["description"] == "Orders {{ '{' }}{ env_var('HOME') }} {{ '{' }}% if true %}x{{ '{' }}% endif %}"
    assert orders["meta"]["owner"] == "sales"
    assert orders["columns"][-1] == {
        "name": "_ingested_at",
        "description": "When the row was loaded into the raw table.",
        "data_type": "timestamptz",
    }
    email = next(c for c in staging["stg_shop__customers"]["columns"] if c["name"] == "email")
    assert email["meta"] == {"classification": "pii"}
    assert email["description"] == "Login {{ '{' }}# not a comment #}"


def test_sources_have_freshness_from_the_sla(unit: Compiled) -> None:
    [source] = load_yaml(unit, "models/sources.yml")["sources"]
    assert (source["name"], source["schema"], source["loaded_at_field"]) == ("raw", "landing", "_ingested_at")
    tables = {t["name"]: t for t in source["tables"]}
    assert tables["shop__orders"]["freshness"] == {
        "warn_after": {"count": 90, "period": "minute"},
        "error_after": {"count": 3, "period": "hour"},
    }
    assert "freshness" not in tables["shop__customers"]
    assert [c["name"] for c in tables["shop__orders"]["columns"]][-3:] == ["_ingested_at", "_run_id", "_source_file"]


def test_exposure_per_dashboard(unit: Compiled) -> None:
    [exposure] = load_yaml(unit, "models/marts/_exposures.yml")["exposures"]
    assert exposure == {
        "name": "sales",
        "label": "Sales",
        "type": "dashboard",
        "owner": {"name": "sales", "email": "sales@unit.example"},
        "depends_on": ["ref('hourly_orders')", "ref('order_flags')"],
        "meta": {"charts": 2},
    }


# --------------------------------------------------------------------------- models and contracts


def test_aggregate_sql(unit: Compiled) -> None:
    sql = dbt_file(unit, "models/marts/hourly_orders.sql")
    assert sql.startswith("{{ config(materialized='table') }}\n")
    assert "DATE_TRUNC('HOUR', \"ordered_at\" AT TIME ZONE 'UTC') AT TIME ZONE 'UTC' AS \"hour\"," in sql
    assert 'region AS "region",\n  COUNT(*) AS "orders",\n  SUM(amount_eur) AS "revenue",' in sql
    assert "MAX('{{ '{' }}{ x }}') AS \"label\"" in sql
    assert "FROM {{ ref('int_orders') }} AS int_orders\nWHERE\n  amount_eur > 0\nGROUP BY\n  1,\n  2" in sql
    daily = dbt_file(unit, "models/marts/daily_orders.sql")
    assert daily.startswith(
        "{{ config(materialized='incremental', unique_key=['day', 'region_code'], "
        "incremental_strategy='delete+insert', on_schema_change='append_new_columns') }}\n"
    )
    assert "CAST(DATE_TRUNC('DAY', \"ordered_at\" AT TIME ZONE 'UTC') AS DATE) AS \"day\"" in daily
    assert 'CAST(COUNT(*) AS INT) AS "orders"' in daily  # the declared type wins over the inferred bigint
    assert "FROM {{ ref('stg_shop__orders') }} AS orders" in daily


def test_sql_model_references_become_refs(unit: Compiled) -> None:
    sql = dbt_file(unit, "models/intermediate/int_orders.sql")
    assert sql.startswith("{{ config(materialized='view') }}\n")
    assert "FROM {{ ref('stg_shop__orders') }} AS o\nJOIN {{ ref('stg_shop__customers') }} AS c\n" in sql
    assert "shop.orders AS" not in sql
    assert "JOIN shop." not in sql
    assert "'{{ '{' }}{ env_var(\"HOME\") }}' AS injected" in sql
    assert "'{{ '{' }}% raw %}' AS raw_tag" in sql


def test_mart_contracts(unit: Compiled) -> None:
    marts = {m["name"]: m for m in load_yaml(unit, "models/marts/_marts.yml")["models"]}
    hourly = marts["hourly_orders"]
    assert hourly["config"]["contract"] == {"enforced": True}
    assert {c["name"]: c["data_type"] for c in hourly["columns"]} == {
        "hour": "timestamptz",
        "region": "text",
        "orders": "bigint",
        "revenue": "numeric",
        "label": "text",
    }
    assert hourly["description"] == "Orders per hour {{ '{' }}{ 1 + 1 }}"
    daily = {c["name"]: c.get("data_type") for c in marts["daily_orders"]["columns"]}
    assert daily == {"day": "date", "region_code": "text", "orders": "integer", "amount": "numeric"}
    flags = marts["order_flags"]
    assert "contract" not in flags.get("config", {})
    assert flags["meta"]["contract"] == ("not enforced: the type of filled cannot be inferred; declare it in the spec")
    intermediate = load_yaml(unit, "models/intermediate/_intermediate.yml")["models"]
    assert "contract" not in intermediate[0].get("config", {})


def test_column_lineage_in_lineage_json(unit: Compiled) -> None:
    nodes = {n["id"]: n for n in json.loads(unit.files["lineage.json"])["nodes"]}
    assert nodes["model.int_orders"]["column_lineage"]["amount_eur"] == ["shop.orders.amount_eur"]
    assert nodes["model.int_orders"]["column_lineage"]["injected"] == []
    assert nodes["model.hourly_orders"]["column_lineage"] == {
        "hour": ["int_orders.ordered_at"],
        "region": ["int_orders.region"],
        "orders": [],
        "revenue": ["int_orders.amount_eur"],
        "label": [],
    }
    assert nodes["model.order_flags"]["column_lineage"]["filled"] == ["int_orders.injected", "int_orders.region"]


# --------------------------------------------------------------------------- project, profile, macros


def test_profile_reads_every_connection_value_from_the_environment(unit: Compiled) -> None:
    profile = load_yaml(unit, "profiles.yml")["unit_shop"]["outputs"]["prod"]
    assert profile == {
        "type": "postgres",
        "host": "{{ env_var('PLATFORMGEN_WAREHOUSE_HOST', 'db.internal') }}",
        "port": "{{ env_var('PLATFORMGEN_WAREHOUSE_PORT', '6543') | as_number }}",
        "user": "{{ env_var('PLATFORMGEN_WAREHOUSE_USER') }}",
        "password": "{{ env_var('DBT_ENV_SECRET_PLATFORMGEN_WAREHOUSE_PASSWORD') }}",
        "dbname": "{{ env_var('PLATFORMGEN_WAREHOUSE_DBNAME', 'dwh') }}",
        "schema": "public",
        "sslmode": "{{ env_var('PLATFORMGEN_WAREHOUSE_SSLMODE', 'prefer') }}",
        "threads": 4,
        "connect_timeout": 10,
    }


@pytest.mark.parametrize("spec", SPECS, ids=[p.name for p in SPECS])
def test_no_secret_or_literal_connection_in_any_profile(spec: Path) -> None:
    compiled = compile_spec(spec)
    profile = YAML(typ="safe").load(compiled.files["dbt/profiles.yml"])[compiled.plan.name]["outputs"]["prod"]
    for key in ("host", "port", "user", "password", "dbname", "sslmode"):
        assert profile[key].startswith("{{ env_var('"), key
    assert profile["password"] == "{{ env_var('DBT_ENV_SECRET_PLATFORMGEN_WAREHOUSE_PASSWORD') }}"
    if compiled.plan.warehouse.connection.conn_id is not None:  # an Airflow connection: no spec value applies
        assert all("', '" not in profile[k] for k in ("host", "port", "dbname"))


def test_project_uses_the_spec_schema_names(unit: Compiled) -> None:
    project = load_yaml(unit, "dbt_project.yml")
    assert (project["name"], project["profile"]) == ("unit_shop", "unit_shop")
    assert project["models"]["unit_shop"] == {
        "+pre-hook": ["set time zone 'UTC'"],
        "staging": {"+schema": "silver", "+materialized": "view"},
        "intermediate": {"+schema": "work", "+materialized": "view"},
        "marts": {"+schema": "gold", "+materialized": "table"},
    }
    macro = dbt_file(unit, "macros/generate_schema_name.sql")
    assert "{{ custom_schema_name | trim }}" in macro
    tests = dbt_file(unit, "macros/platformgen_tests.sql")
    for name in ("in_range", "matches_regex", "row_count_between", "unique_combination_of_columns", "fresh_within"):
        assert f"{{% test {name}(model" in tests
    assert "{% test expression_is_true(model, expression) %}" in tests


# --------------------------------------------------------------------------- Jinja escaping


def _render(text: str) -> str:
    """Render as dbt would, with stand-ins for dbt's functions; any other call fails the test."""
    env = jinja2.Environment(undefined=jinja2.StrictUndefined, extensions=["jinja2.ext.do"])
    stubs: dict[str, Any] = {
        "config": lambda **_: "",
        "ref": lambda name: f"REF[{name}]",
        "source": lambda source, table: f"SOURCE[{source}.{table}]",
        "is_incremental": lambda: False,
        "this": "THIS",
    }
    return env.from_string(text).render(**stubs)


def test_generated_sql_renders_to_the_spec_literals(unit: Compiled) -> None:
    rendered = _render(dbt_file(unit, "models/intermediate/int_orders.sql"))
    assert """'{{ env_var("HOME") }}' AS injected, '{% raw %}' AS raw_tag""" in rendered.replace("\n  ", " ")
    assert "FROM REF[stg_shop__orders] AS o" in rendered
    staging = _render(dbt_file(unit, "models/staging/stg_shop__orders.sql"))
    assert "where (NOT is_test AND note <> '{{ secret }}')" in staging
    assert "MAX('{{ x }}')" in _render(dbt_file(unit, "models/marts/hourly_orders.sql"))
    for path, text in unit.outputs["dbt"].items():
        if path.endswith(".sql") and "macros/" not in path:
            _render(text)  # nothing but the stand-ins is called


@given(st.text(alphabet="{}%#-'\"ab \n\\", max_size=40))
def test_escaped_text_renders_to_itself(text: str) -> None:
    assert jinja2.Environment(keep_trailing_newline=True).from_string(escape_jinja(text)).render() == text


def test_test_arguments_that_look_like_calls_stay_text() -> None:
    from dbt.clients.jinja import get_rendered

    for value in ("env_var('HOME')", " ref('x') ", "doc(1)", "{{ env_var('HOME') }}", "a {% if %} b", "plain"):
        assert get_rendered(jinja_argument(value), {}, native=True) == value


# --------------------------------------------------------------------------- compile pipeline


def test_compile_rejects_sql_with_an_unknown_column_before_writing(tmp_path: Path) -> None:
    spec = write_unit_spec(tmp_path / "spec")
    text = (
        (spec / "platform.yaml")
        .read_text()
        .replace("select order_id, num_nonnulls", "select order_id, no_such_col, num_nonnulls")
    )
    (spec / "platform.yaml").write_text(text)
    line = next(i for i, row in enumerate(text.split("\n"), 1) if "no_such_col" in row)
    col = text.split("\n")[line - 1].index("no_such_col") + 1
    runner = CliRunner()
    result = runner.invoke(app, ["validate", str(spec / "platform.yaml")])
    assert result.exit_code == 1
    assert f"platform.yaml:{line}:{col}: unknown column 'no_such_col'" in result.stdout
    out = tmp_path / "out"
    result = runner.invoke(app, ["compile", str(spec / "platform.yaml"), "-o", str(out)])
    assert result.exit_code == 1
    assert f"platform.yaml:{line}:{col}: unknown column 'no_such_col'" in result.stdout
    assert not out.exists() or not list(out.rglob("*"))


def test_compiler_does_not_import_dbt() -> None:
    code = (
        "import sys; from pathlib import Path; from platformgen.compiler import compile_spec; "
        f"compile_spec(Path({str(REPO / 'specs')!r}), ['dbt', 'lineage']); "
        "assert not [m for m in sys.modules if m == 'dbt' or m.startswith('dbt.')], 'dbt imported'"
    )
    subprocess.run([sys.executable, "-c", code], check=True)


# --------------------------------------------------------------------------- dbt parse


def dbt_env() -> dict[str, str]:
    """Dummy connection settings: `dbt parse` resolves the profile but does not connect."""
    return {
        "DBT_SEND_ANONYMOUS_USAGE_STATS": "false",
        "PLATFORMGEN_WAREHOUSE_HOST": "localhost",
        "PLATFORMGEN_WAREHOUSE_PORT": "5432",
        "PLATFORMGEN_WAREHOUSE_USER": "parse_user",
        "PLATFORMGEN_WAREHOUSE_DBNAME": "parse_db",
        "DBT_ENV_SECRET_PLATFORMGEN_WAREHOUSE_PASSWORD": "dummy-password-for-parse",
    }


@pytest.mark.parametrize("spec", [*SPECS, None], ids=[*(p.name for p in SPECS), "unit_spec"])
def test_dbt_parse_succeeds(spec: Path | None, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    from dbt.cli.main import dbtRunner

    source = spec if spec is not None else write_unit_spec(tmp_path / "spec")
    compiled = compile_spec(source)
    out = tmp_path / "out"
    write_files(out, compiled.files, compiled.plan.spec_label)
    for name, value in dbt_env().items():
        monkeypatch.setenv(name, value)
    project = str(out / "dbt")
    result = dbtRunner().invoke(
        [
            "parse",
            "--project-dir",
            project,
            "--profiles-dir",
            project,
            "--target-path",
            str(tmp_path / "target"),
            "--log-path",
            str(tmp_path / "logs"),
            "--no-partial-parse",
        ]
    )
    assert result.success, result.exception
    manifest = result.result
    models = {n.name for n in manifest.nodes.values() if n.resource_type == "model"}
    assert models == {t.staging_model for t in compiled.plan.tables} | {m.name for m in compiled.plan.models}
    tests = {n.name for n in manifest.nodes.values() if n.resource_type == "test"}
    assert tests == {
        c.id for c in compiled.plan.checks if not (c.kind == "freshness" and c.column is None and "." not in c.dataset)
    }
    assert {e.name for e in manifest.exposures.values()} == {d.name for d in compiled.plan.dashboards}
    contracts = {n.name for n in manifest.nodes.values() if n.resource_type == "model" and n.contract.enforced}
    assert contracts <= {m.name for m in compiled.plan.models if m.layer == "gold"}
    shutil.rmtree(out)
    assert os.environ["DBT_SEND_ANONYMOUS_USAGE_STATS"] == "false"
