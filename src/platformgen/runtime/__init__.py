"""Runtime imported by the generated DAGs: extraction, loading, alerting. Never imports the compiler.

Modules here import only the standard library at module level; boto3, pyarrow, psycopg and requests are
imported inside the functions that need them, so a DAG file that imports `platformgen.runtime.tasks`
stays cheap to parse.
"""
