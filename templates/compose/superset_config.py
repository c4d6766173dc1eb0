"""Superset configuration of the platformgen stack: every secret comes from the environment (.env)."""

import os
from urllib.parse import quote

SECRET_KEY = os.environ["SUPERSET_SECRET_KEY"]
SQLALCHEMY_DATABASE_URI = "postgresql+psycopg2://superset:{}@postgres:5432/superset".format(
    quote(os.environ["SUPERSET_DB_PASSWORD"], safe="")
)
WTF_CSRF_ENABLED = True
SQLLAB_CTAS_NO_LIMIT = True
