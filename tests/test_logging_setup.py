"""What the logging setup keeps out of the logs."""

from __future__ import annotations

import logging

from tidings.logging_setup import HideQueryStrings


def test_access_log_lines_lose_their_query_string_and_keep_the_rest() -> None:
    record = logging.LogRecord(
        "uvicorn.access", logging.INFO, __file__, 1, '%s - "%s %s HTTP/%s" %d',
        ("127.0.0.1:5000", "POST", "/sms/v1/webhooks/01ABC/dlr/?token=s3cret", "1.1", 200),
        None)
    assert HideQueryStrings().filter(record)
    assert record.getMessage() == '127.0.0.1:5000 - "POST /sms/v1/webhooks/01ABC/dlr/ HTTP/1.1" 200'
