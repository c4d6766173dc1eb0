"""platformgen: compile a declarative data-platform spec into Airflow, dbt, GX, Superset, OpenMetadata and compose."""

__version__ = "0.1.0"
