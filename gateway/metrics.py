"""Prometheus metrics, one registry per application (so tests and processes never share)."""

from __future__ import annotations

from dataclasses import dataclass

from prometheus_client import CollectorRegistry, Counter, Histogram


@dataclass(frozen=True, slots=True)
class Metrics:
    registry: CollectorRegistry
    requests: Counter
    latency: Histogram
    entries: Counter
    deliveries: Counter
    delivery_latency: Histogram
    reconcile_failures: Counter

    @classmethod
    def create(cls) -> Metrics:
        registry = CollectorRegistry()
        return cls(
            registry=registry,
            requests=Counter("recon_http_requests", "HTTP requests answered",
                             ["method", "route", "status"], registry=registry),
            latency=Histogram("recon_http_request_duration_seconds",
                              "time to answer an HTTP request", ["method", "route"],
                              registry=registry),
            entries=Counter("recon_ingest_entries", "bank lines received by import",
                            ["result"], registry=registry),
            deliveries=Counter("recon_webhook_attempts", "webhook delivery attempts, by "
                               "outcome (succeeded, failed)", ["outcome"], registry=registry),
            delivery_latency=Histogram("recon_webhook_attempt_duration_seconds",
                                       "time from sending a webhook to its answer",
                                       registry=registry),
            reconcile_failures=Counter(
                "recon_reconcile_failures", "payments whose reconciliation failed, isolated "
                "from the rest of the pass, by stage (engine, apply)", ["stage"],
                registry=registry),
        )
