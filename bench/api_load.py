"""The read API under load: a paginated transactions list, served by a real process.

    python bench/api_load.py [--entries 20000] [--concurrency 16] [--seconds 20]

Starts ``recon-gateway serve`` on an embedded PostgreSQL server in a temporary folder,
imports one statement of ``--entries`` lines, creates a key, then from this (second)
process keeps ``--concurrency`` aiohttp clients asking for pages of
``GET /v1/transactions?limit=100`` (each walking on with the cursor it got, from a random
start) for ``--seconds``. Reports requests/s and latency percentiles, beside the floor of
the same run: ``GET /healthz``, which does no database work.
"""

from __future__ import annotations

import argparse
import asyncio
import os
import platform
import random
import socket
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import aiohttp
import generate  # bench/generate.py, beside this script


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port: int = sock.getsockname()[1]
        return port


def _cli(*args: str) -> str:
    done = subprocess.run([sys.executable, "-m", "gateway.cli", *args], capture_output=True,
                          text=True, check=True, timeout=600)
    return done.stdout


async def _wait_ready(base: str, deadline: float = 60) -> None:
    end = time.monotonic() + deadline
    async with aiohttp.ClientSession() as session:
        while time.monotonic() < end:
            try:
                async with session.get(base + "/readyz") as response:
                    if response.status == 200:
                        return
            except aiohttp.ClientError:
                pass
            await asyncio.sleep(0.1)  # polling interval
    raise SystemExit("the server did not become ready")


async def _load(base: str, path: str, key: str, concurrency: int,
                seconds: float) -> tuple[int, list[float], int]:
    latencies: list[float] = []
    errors = 0
    stop = time.monotonic() + seconds
    headers = {"Authorization": f"Bearer {key}"}
    rng = random.Random(7)

    async def client(session: aiohttp.ClientSession) -> None:
        nonlocal errors
        cursor: str | None = None
        while time.monotonic() < stop:
            url = base + path
            if path.startswith("/v1/transactions"):
                if cursor is None and rng.random() < 0.5:
                    url += f"&from=2026-{rng.randint(1, 12):02d}-01"
                elif cursor:
                    url += f"&cursor={cursor}"
            started = time.perf_counter()
            async with session.get(url, headers=headers) as response:
                body = await response.json() if path != "/healthz" else None
                latencies.append(time.perf_counter() - started)
                if response.status != 200:
                    errors += 1
                    continue
            cursor = body.get("next_cursor") if isinstance(body, dict) else None

    connector = aiohttp.TCPConnector(limit=concurrency)
    async with aiohttp.ClientSession(connector=connector) as session:
        await asyncio.gather(*(client(session) for _ in range(concurrency)))
    return len(latencies), latencies, errors


def _percentile(values: list[float], share: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(share * len(ordered)))]


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--entries", type=int, default=20_000)
    parser.add_argument("--concurrency", type=int, default=16)
    parser.add_argument("--seconds", type=float, default=20)
    args = parser.parse_args(argv)
    with tempfile.TemporaryDirectory(prefix="recon-api-load-") as folder:
        data_dir = Path(folder) / "data"
        statement = Path(folder) / "statement.xml"
        statement.write_bytes(generate.camt053(args.entries)[0])
        _cli("import", str(statement), "--data-dir", str(data_dir))
        key = _cli("keys", "create", "--role", "auditor", "--name", "load",
                   "--data-dir", str(data_dir)).strip()
        port = _free_port()
        server = subprocess.Popen(
            [sys.executable, "-m", "gateway.cli", "serve", "--port", str(port),
             "--data-dir", str(data_dir)],
            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        base = f"http://127.0.0.1:{port}"
        try:
            asyncio.run(_wait_ready(base))
            rows = []
            for label, path in (("GET /healthz (floor)", "/healthz"),
                                ("GET /v1/transactions?limit=100", "/v1/transactions?limit=100")):
                count, latencies, errors = asyncio.run(
                    _load(base, path, key, args.concurrency, args.seconds))
                rows.append((label, count / args.seconds, _percentile(latencies, 0.5),
                             _percentile(latencies, 0.99), errors))
        finally:
            server.terminate()
            server.wait(timeout=60)
    print(f"command: python bench/api_load.py --entries {args.entries} --concurrency "
          f"{args.concurrency} --seconds {args.seconds:g}")
    print(f"machine: {os.cpu_count()} cores, Python {platform.python_version()}; server and "
          f"client processes share them")
    print()
    print("| request | requests/s | p50 ms | p99 ms | errors |")
    print("| --- | ---: | ---: | ---: | ---: |")
    for label, rate, p50, p99, errors in rows:
        print(f"| {label} | {rate:,.0f} | {p50 * 1000:.1f} | {p99 * 1000:.1f} | {errors} |")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
