"""``python -m tidings``: the ``tidings`` command (how ``tidings serve`` starts its worker)."""

from tidings.cli import app

app()
