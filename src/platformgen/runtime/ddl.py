"""DDL of the data_platform schema: the single definition used by the bootstrap SQL and the runtime."""

from __future__ import annotations


def _q(name: str) -> str:
    return '"' + name.replace('"', '""') + '"'


def platform_tables_sql(schema: str) -> str:
    """Idempotent DDL for ingestion_log, watermarks, alerts, quality_results and sla_misses in `schema`."""
    s = _q(schema)
    return f"""\
create schema if not exists {s};

-- One row per extract or load of a dataset (and per file for file sources).
create table if not exists {s}.ingestion_log (
    id            bigserial primary key,
    run_id        text        not null,
    source        text        not null,
    dataset       text        not null,
    stage         text        not null,  -- extract | load
    status        text        not null,  -- running | success | failed | skipped
    rows          bigint,
    bytes         bigint,
    file_name     text,
    file_checksum text,
    started_at    timestamptz not null default now(),
    finished_at   timestamptz,
    error         text
);
create index if not exists ingestion_log_dataset_idx on {s}.ingestion_log (source, dataset, started_at);

-- Incremental cursors; advanced in the same transaction as the load into raw.
create table if not exists {s}.watermarks (
    source     text        not null,
    dataset    text        not null,
    cursor     text        not null,
    value      text,
    run_id     text,
    updated_at timestamptz not null default now(),
    primary key (source, dataset)
);

-- Every alert raised: task failures, SLA misses, quality failures, schema changes.
create table if not exists {s}.alerts (
    id         bigserial primary key,
    raised_at  timestamptz not null default now(),
    kind       text        not null,  -- task_failure | sla_miss | quality | schema_change
    severity   text        not null,  -- warn | error
    dataset    text,
    dag_id     text,
    task_id    text,
    run_id     text,
    message    text        not null,
    channels   text[]      not null default '{{}}',
    delivered  boolean     not null default false
);

-- One row per expectation evaluated.
create table if not exists {s}.quality_results (
    id             bigserial primary key,
    run_id         text        not null,
    checked_at     timestamptz not null default now(),
    dataset        text        not null,
    layer          text        not null,
    check_id       text        not null,
    check_kind     text        not null,
    column_name    text,
    severity       text        not null,
    success        boolean     not null,
    observed_value text,
    unexpected     bigint,
    details        jsonb
);
create index if not exists quality_results_dataset_idx on {s}.quality_results (dataset, checked_at);

-- Freshness and deadline misses.
create table if not exists {s}.sla_misses (
    id          bigserial primary key,
    detected_at timestamptz not null default now(),
    dataset     text        not null,
    kind        text        not null,  -- freshness | deadline
    severity    text        not null,
    expected    text        not null,
    observed    text,
    run_id      text
);
"""
