"""Logs on standard error, one line per event, as text for a person or JSON for a program.

``log_format`` chooses: ``text`` (a time, the level and a readable line), ``json`` (one
JSON object per line, the fields of the line apart), or ``auto`` (text on a terminal, JSON
otherwise, so a person at a terminal reads and a log collector parses). Both carry the
request id of the request at hand.

Never log an IBAN, a name, an amount or a secret: log ids and counts
(``gateway.access_log`` writes the request and delivery lines that way).
"""

from __future__ import annotations

import contextvars
import json
import logging
import sys
from datetime import UTC, datetime
from typing import TextIO

from gateway.settings import SettingsError

request_id: contextvars.ContextVar[str | None] = contextvars.ContextVar("request_id",
                                                                         default=None)

FORMATS = ("auto", "text", "json")
# Fields a log line may carry besides its message (``extra=`` of the logging call).
FIELDS = ("method", "path", "status", "duration_ms", "role", "key_id", "subscription_id",
          "event_id", "event_type", "attempt", "latency_ms", "error", "next_attempt_at",
          "outcome")
# Marks the lines that already say their request id in their message.
SAYS_REQUEST = "says_request"


def _time(record: logging.LogRecord) -> str:
    moment = datetime.fromtimestamp(record.created, UTC)
    return moment.isoformat(timespec="milliseconds").replace("+00:00", "Z")


class JsonFormatter(logging.Formatter):
    def format(self, record: logging.LogRecord) -> str:
        entry = {
            "time": _time(record),
            "level": record.levelname,
            "logger": record.name,
            "message": record.getMessage(),
        }
        rid = request_id.get()
        if rid:
            entry["request_id"] = rid
        for key in FIELDS:
            value = record.__dict__.get(key)
            if value is not None:
                entry[key] = value
        if record.exc_info:
            entry["exception"] = self.formatException(record.exc_info)
        return json.dumps(entry, ensure_ascii=False)


class TextFormatter(logging.Formatter):
    """``2026-11-21T10:00:00.123Z INFO  GET /v1/invoices 200 3.1 ms key=... request=...``:
    the message on one line (control characters escaped), the request id added where the
    message does not say it, a traceback below when there is one."""

    def format(self, record: logging.LogRecord) -> str:
        message = _one_line(record.getMessage())
        rid = request_id.get()
        if rid and not record.__dict__.get(SAYS_REQUEST):
            message += f" request={rid}"
        line = f"{_time(record)} {record.levelname:<5} {message}"
        if record.exc_info:
            line += "\n" + self.formatException(record.exc_info)
        return line


def _one_line(text: str) -> str:
    """Control characters (a newline in a message would start a forged line) escaped."""
    if text.isprintable():
        return text
    return "".join(c if c.isprintable() else repr(c)[1:-1] for c in text)


def formatter_for(log_format: str, stream: TextIO) -> logging.Formatter:
    if log_format not in FORMATS:
        raise SettingsError(f"setting log_format: expected one of {', '.join(FORMATS)}, "
                            f"got {log_format!r}")
    if log_format == "auto":
        log_format = "text" if _is_terminal(stream) else "json"
    return TextFormatter() if log_format == "text" else JsonFormatter()


def _is_terminal(stream: TextIO) -> bool:
    try:
        return stream.isatty()
    except (AttributeError, ValueError):  # no isatty, or closed
        return False


def configure(level: str = "INFO", log_format: str = "auto",
              stream: TextIO | None = None) -> None:
    """Send every log line to ``stream`` (standard error) in ``log_format``."""
    target = stream if stream is not None else sys.stderr
    handler = logging.StreamHandler(target)
    handler.setFormatter(formatter_for(log_format, target))
    root = logging.getLogger()
    root.handlers[:] = [handler]
    root.setLevel(level)
    logging.getLogger("aiohttp.access").setLevel(logging.WARNING)  # we log requests ourselves
