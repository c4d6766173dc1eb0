#!/usr/bin/env bash
# Superset start-up: migrations, the admin user, the built-in roles and the platform's roles (superset/roles.json).
# Idempotent: runs on every `docker compose up`; an existing admin is left as it is.
set -euo pipefail

superset db upgrade
superset fab create-admin --username "$SUPERSET_ADMIN_USER" --firstname Superset --lastname Admin \
  --email "$SUPERSET_ADMIN_EMAIL" --password "$SUPERSET_ADMIN_PASSWORD"
superset init
python /app/platformgen/superset_bootstrap.py roles /app/platform/superset
