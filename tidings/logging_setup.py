"""Logging for the command line: every record goes to standard error, never standard output, so
that a command's output (``tidings tenant create --json``) is all that stdout carries.

``configure_logging()`` is called once when the CLI starts (before settings are read, so the
warning about a generated secret key is not lost) and ``set_level()`` once the settings say
which level (``TIDINGS_LOG_LEVEL``) they want. Calling either again replaces, never duplicates.
"""

from __future__ import annotations

import logging
import sys
from typing import TextIO

LOG_FORMAT = "%(asctime)s %(levelname)s %(name)s: %(message)s"
LEVELS = ("CRITICAL", "ERROR", "WARNING", "INFO", "DEBUG")
# Chatty at INFO (Alembic says which DDL mode it assumes on every connection): they speak at
# WARNING and above unless the level is DEBUG. Tidings logs the migrations it applies itself.
# httpx logs every request's full URL at INFO, and provider URLs carry credentials (Twilio's
# account SID in the path, MSG91's auth key in the balance query).
QUIET_BELOW_DEBUG = ("alembic", "httpx")


class _StderrHandler(logging.StreamHandler):  # type: ignore[type-arg]
    """Writes to whatever ``sys.stderr`` is when a record is emitted (as ``logging.lastResort``
    does), so a test runner that swaps the stream captures the log instead of breaking it."""

    def __init__(self) -> None:
        logging.Handler.__init__(self)

    @property
    def stream(self) -> TextIO:
        return sys.stderr


class HideQueryStrings(logging.Filter):
    """Drops the query string from uvicorn's access-log lines: webhook URLs carry each SMS
    app's secret token there (``/sms/v1/webhooks/{id}/dlr/?token=…``)."""

    def filter(self, record: logging.LogRecord) -> bool:
        args = record.args
        if isinstance(args, tuple) and len(args) >= 3 and isinstance(args[2], str):
            record.args = (*args[:2], args[2].split("?", 1)[0], *args[3:])
        return True


def parse_level(name: str) -> int:
    """``"info"`` → ``logging.INFO``; ``ValueError`` naming the accepted levels otherwise."""
    level = name.strip().upper()
    if level not in LEVELS:
        raise ValueError(f"log level must be one of {', '.join(LEVELS)}, got {name!r}")
    return logging.getLevelNamesMapping()[level]


def configure_logging(level: int = logging.INFO) -> None:
    """Send the root logger's records to stderr at ``level``, replacing an earlier call's
    handler; other handlers (a test runner's) are left alone."""
    root = logging.getLogger()
    for handler in [h for h in root.handlers if isinstance(h, _StderrHandler)]:
        root.removeHandler(handler)
    handler = _StderrHandler()
    handler.setFormatter(logging.Formatter(LOG_FORMAT))
    root.addHandler(handler)
    access = logging.getLogger("uvicorn.access")
    if not any(isinstance(f, HideQueryStrings) for f in access.filters):
        access.addFilter(HideQueryStrings())
    set_level(level)


def set_level(level: int) -> None:
    logging.getLogger().setLevel(level)
    for name in QUIET_BELOW_DEBUG:
        logging.getLogger(name).setLevel(level if level <= logging.DEBUG else
                                         max(level, logging.WARNING))
