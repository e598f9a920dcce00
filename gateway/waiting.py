"""Waiting in the service's loops: for the first of several events, or a time."""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import Awaitable
from typing import Any


async def first(*waits: Awaitable[Any], timeout: float) -> None:
    """Wait until the first of ``waits`` finishes or ``timeout`` passes; the others are
    cancelled and awaited, so nothing is left running."""
    tasks = [asyncio.ensure_future(w) for w in waits]
    try:
        await asyncio.wait(tasks, timeout=timeout, return_when=asyncio.FIRST_COMPLETED)
    finally:
        for task in tasks:
            task.cancel()
        for task in tasks:
            with contextlib.suppress(asyncio.CancelledError):
                await task
