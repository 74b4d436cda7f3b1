"""The ``tidings`` command run in-process (typer's CliRunner, in a thread so that the command's
own ``asyncio.run`` does not meet the test's event loop), against the test database."""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Iterator
from dataclasses import dataclass, field

import pytest
from click.testing import Result
from typer.testing import CliRunner

from tests.conftest import TEST_SECRET
from tidings.cli import app
from tidings.config import Settings
from tidings.runtime import Runtime


@dataclass
class Cli:
    """``await cli("tenant", "list")``; ``env`` overrides the test database's settings (None
    unsets a variable)."""

    env: dict[str, str | None]
    runner: CliRunner = field(default_factory=CliRunner)

    def invoke(self, *args: str, env: dict[str, str | None] | None = None) -> Result:
        return self.runner.invoke(app, list(args), env={**self.env, **(env or {})})

    async def __call__(self, *args: str, env: dict[str, str | None] | None = None) -> Result:
        return await asyncio.to_thread(self.invoke, *args, env=env)


@pytest.fixture
def cli(settings: Settings, runtime: Runtime) -> Iterator[Cli]:
    """Depends on ``runtime`` so that what the commands write is emptied after the test."""
    root = logging.getLogger()
    handlers, level = list(root.handlers), root.level
    yield Cli({"TIDINGS_DATABASE_URL": settings.database_url,
               "TIDINGS_SECRET_KEY": TEST_SECRET,
               "TIDINGS_VAR_DIR": str(settings.var_dir),
               "TIDINGS_LOG_LEVEL": "INFO"})
    root.handlers[:] = handlers  # undo the CLI's logging set-up
    root.setLevel(level)
