"""Placeholder: being written."""

from __future__ import annotations

from parsers.model import Statement

FORMAT = "ofx"


def sniff(head: bytes) -> bool:
    return False


def parse(data: bytes, *, source: str) -> tuple[Statement, ...]:
    raise NotImplementedError
