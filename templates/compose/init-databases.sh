#!/usr/bin/env bash
# Creates the roles and databases of Airflow, Superset, OpenMetadata and the warehouse. PostgreSQL's entrypoint
# runs (sources) this once, when the data volume is empty; the passwords come from .env through the environment.

platformgen_create_database() {
  psql -v ON_ERROR_STOP=1 --username "$POSTGRES_USER" --dbname postgres \
    --set=role="$1" --set=password="$2" --set=db="$3" <<'SQL'
SELECT format('CREATE ROLE %I LOGIN PASSWORD %L', :'role', :'password')
 WHERE NOT EXISTS (SELECT FROM pg_roles WHERE rolname = :'role') \gexec
SELECT format('CREATE DATABASE %I OWNER %I', :'db', :'role')
 WHERE NOT EXISTS (SELECT FROM pg_database WHERE datname = :'db') \gexec
SQL
}

platformgen_create_database airflow "$AIRFLOW_DB_PASSWORD" airflow
platformgen_create_database superset "$SUPERSET_DB_PASSWORD" superset
platformgen_create_database openmetadata "$OPENMETADATA_DB_PASSWORD" openmetadata
platformgen_create_database "$WAREHOUSE_USER" "$WAREHOUSE_PASSWORD" "$WAREHOUSE_DB"
