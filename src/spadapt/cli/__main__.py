"""`python -m spadapt.cli ...` runs the `spadapt` command."""

from . import app

app()
