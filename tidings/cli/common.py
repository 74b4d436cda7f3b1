"""What every command shares: settings, operator-facing errors, a migrated database with a
one-commit unit of work, and output.

Commands print their result on stdout (one JSON value with ``--json``, nothing else) and
everything else, logs included, on stderr. An expected failure (a ``TidingsError`` from a
service, a busy node lock, an unreachable database, bad settings) prints ``error: <why>`` on
stderr and exits 1, without a traceback.
"""

from __future__ import annotations

import asyncio
import json
import logging
import sys
from collections.abc import AsyncIterator, Callable, Coroutine
from contextlib import asynccontextmanager
from dataclasses import dataclass
from datetime import datetime
from typing import Annotated, Any, NoReturn, TypeVar

import click
import typer
from pydantic import ValidationError
from sqlalchemy.engine import make_url
from sqlalchemy.exc import SQLAlchemyError
from sqlalchemy.ext.asyncio import AsyncEngine, AsyncSession, async_sessionmaker

from tidings.config import Settings
from tidings.db.migrate import upgrade_to_head
from tidings.db.session import create_engine, create_session_factory
from tidings.errors import TidingsError
from tidings.logging_setup import parse_level, set_level
from tidings.pipeline.node_lock import NodeLockBusy

log = logging.getLogger("tidings.cli")

T = TypeVar("T")

JsonOption = Annotated[bool, typer.Option(
    "--json", help="Print one JSON value on stdout and nothing else (logs go to stderr).")]
TenantOption = Annotated[str, typer.Option("--tenant", help="The tenant's id.",
                                           show_default=False)]


def fail(message: str) -> NoReturn:
    """Tell the operator why on stderr and exit 1."""
    typer.echo(f"error: {message}", err=True)
    raise typer.Exit(1)


def load_settings(**overrides: object) -> Settings:
    """``Settings.load()`` with the options given on the command line (None = not given), and the
    log level they name applied."""
    given = {name: value for name, value in overrides.items() if value is not None}
    try:
        settings = Settings.load(**given)
        set_level(parse_level(settings.log_level))
    except ValidationError as exc:
        fail("invalid configuration: " + "; ".join(
            f"TIDINGS_{'_'.join(map(str, error['loc'])).upper()}: {error['msg']}"
            for error in exc.errors()))
    except ValueError as exc:
        fail(f"invalid configuration: {exc}")
    except OSError as exc:
        fail(f"cannot store the generated secret key under TIDINGS_VAR_DIR: {exc}")
    return settings


def run(work: Coroutine[Any, Any, T]) -> T:
    """Run a command's coroutine on uvloop where installed (as uvicorn does for serve),
    turning expected failures into ``error: …`` and exit 1."""
    try:
        with asyncio.Runner(loop_factory=_loop_factory()) as runner:
            return runner.run(work)
    except TidingsError as exc:
        fail(exc.detail)
    except NodeLockBusy as exc:
        fail(str(exc))
    except SQLAlchemyError as exc:
        log.debug("database failure", exc_info=True)
        fail(f"database error: {_one_line(exc)}")
    except OSError as exc:  # an unreachable server, an unwritable database directory
        log.debug("system error", exc_info=True)
        fail(_one_line(exc))


def _loop_factory() -> Callable[[], asyncio.AbstractEventLoop] | None:
    try:
        import uvloop  # noqa: PLC0415 (not on Windows)
    except ImportError:
        return None
    return uvloop.new_event_loop


def _one_line(exc: Exception) -> str:
    lines = [line.strip() for line in str(exc).splitlines() if line.strip()]
    return " ".join(lines[:3]) or type(exc).__name__


def shown_url(database_url: str) -> str:
    """The database URL with its password hidden, fit for logs and output."""
    return make_url(database_url).render_as_string(hide_password=True)


@dataclass(frozen=True)
class Database:
    engine: AsyncEngine
    sessions: async_sessionmaker[AsyncSession]
    applied: list[str]

    @asynccontextmanager
    async def unit_of_work(self) -> AsyncIterator[AsyncSession]:
        """A session that commits once when the block ends without error (else rolls back)."""
        async with self.sessions() as session:
            yield session
            await session.commit()


@asynccontextmanager
async def open_database(settings: Settings) -> AsyncIterator[Database]:
    """The database at ``settings.database_url``, its pending migrations applied (and logged),
    for the length of the block; the engine is disposed after."""
    engine = create_engine(settings.database_url)
    try:
        applied = await upgrade_to_head(engine)
        if applied:
            log.info("applied migrations to %s: %s", shown_url(settings.database_url),
                     ", ".join(applied))
        yield Database(engine, create_session_factory(engine), applied)
    finally:
        await engine.dispose()


def timestamp(moment: datetime) -> str:
    """A stored time as operators read it: ``2026-11-24 12:00:00Z``."""
    return moment.strftime("%Y-%m-%d %H:%M:%SZ")


def emit_json(value: object) -> None:
    typer.echo(json.dumps(value))


def emit(*lines: str) -> None:
    for line in lines:
        typer.echo(line)


def password_or_prompt(password: str | None) -> str:
    """``--password`` when given; else asked for twice on the terminal (prompt on stderr)."""
    if password is not None:
        return password
    if not sys.stdin.isatty():
        fail("--password is required when there is no terminal to ask on")
    answer: str = click.prompt("Password", hide_input=True, confirmation_prompt=True, err=True)
    return answer
