"""The lines that say where and when a benchmark ran, shared by the benchmarks that print a
markdown section for docs/benchmarks.md (``parsers_bench``, ``parse_cli_bench``)."""

from __future__ import annotations

import os
import platform
from collections.abc import Iterable
from datetime import UTC, datetime
from importlib import metadata


def _cpu_model() -> str:
    try:
        with open("/proc/cpuinfo", encoding="utf-8") as info:
            return next((line.split(":", 1)[1].strip() for line in info
                         if line.startswith("model name")), "")
    except OSError:
        return ""


def _version(dist: str) -> str:
    try:
        return f"{dist} {metadata.version(dist)}"
    except metadata.PackageNotFoundError:
        return f"{dist} (absent)"


def machine(dists: Iterable[str], extra: Iterable[str] = ()) -> list[str]:
    """Markdown list items: the machine (cores, CPU, load average now), Python and the
    versions of ``dists``, the lines of ``extra``, then the date."""
    cpus = os.cpu_count()
    usable = len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else cpus
    model = _cpu_model()
    load = os.getloadavg() if hasattr(os, "getloadavg") else ()
    return [
        f"- machine: {cpus} cores ({usable} usable){', ' + model if model else ''}; "
        f"{platform.system()} {platform.machine()}; load average at start "
        + " ".join(f"{x:.2f}" for x in load),
        f"- Python {platform.python_version()} ({platform.python_implementation()}); "
        + ", ".join(_version(dist) for dist in dists),
        *extra,
        f"- date: {datetime.now(UTC):%Y-%m-%d %H:%M} UTC",
    ]
