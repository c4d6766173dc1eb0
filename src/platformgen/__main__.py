"""`python -m platformgen`."""

from platformgen.cli import run

run()
