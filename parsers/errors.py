"""Errors raised by the parsers.

::

    GatewayError                 root of every error recon-gateway raises on purpose
    └── ParseError               a document could not be read as a whole statement
        ├── UnknownFormatError   no format recognised the content
        └── TooLargeError        the document exceeds the configured size limit
    └── WriteError               a Statement cannot be written in a format without loss

A ``ParseError`` always names the document (``source``), where in it the problem
is (``line`` for line-based formats, ``path`` for XML elements), the ``field`` when
one is known, and what was expected. Parsers never raise anything else for bad
input: a third-party exception escaping a parser is a bug.
"""

from __future__ import annotations


class GatewayError(Exception):
    """Root of recon-gateway's own exceptions."""


class ParseError(GatewayError):
    """A document could not be parsed; nothing of it may be used."""

    def __init__(
        self,
        message: str,
        *,
        source: str,
        line: int | None = None,
        path: str | None = None,
        field: str | None = None,
    ) -> None:
        self.message = message
        self.source = source
        self.line = line
        self.path = path
        self.field = field
        super().__init__(str(self))

    @property
    def location(self) -> str:
        """Where the problem is, as ``line 12`` or ``/Document/BkToCstmrStmt/Stmt[2]``."""
        parts = []
        if self.line is not None:
            parts.append(f"line {self.line}")
        if self.path:
            parts.append(self.path)
        if self.field:
            parts.append(f"field {self.field}")
        return ", ".join(parts)

    def __str__(self) -> str:
        where = self.location
        if not where:
            return f"{self.source}: {self.message}"
        return f"{self.source}: {where}: {self.message}"


class UnknownFormatError(ParseError):
    """No parser recognised the document's content."""


class TooLargeError(ParseError):
    """The document is larger than the configured limit."""


class WriteError(GatewayError):
    """A statement holds something the target format cannot carry; nothing was written."""
