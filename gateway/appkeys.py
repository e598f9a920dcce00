"""Typed keys of what the application holds (STYLE.md: web.AppKey, never bare strings)."""

from __future__ import annotations

import asyncpg
from aiohttp import web

from gateway.metrics import Metrics
from gateway.settings import Settings
from gateway.webhook_http import SubscriberKeys

POOL = web.AppKey("pool", asyncpg.Pool)
SETTINGS = web.AppKey("settings", Settings)
METRICS = web.AppKey("metrics", Metrics)
SUBSCRIBER_KEYS = web.AppKey("subscriber_keys", SubscriberKeys)
