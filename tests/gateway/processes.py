"""Real ``recon-gateway`` processes for the tests that are about processes."""

from __future__ import annotations

import io
import json
import os
import signal
import socket
import subprocess
import sys
import time
import urllib.error
import urllib.request
from pathlib import Path
from typing import Any


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port: int = sock.getsockname()[1]
        return port


def cli(*args: str, env: dict[str, str] | None = None,
        timeout: float = 120) -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, "-m", "gateway.cli", *args], capture_output=True,
                          text=True, timeout=timeout, check=False,
                          env={**os.environ, **(env or {})})


def command(*args: str) -> subprocess.CompletedProcess[str]:
    """``cli``'s twin in this process (``gateway.cli.main`` with its own output streams), for
    claims about what a command does rather than about processes: a child process spends
    over a second importing the gateway before it starts."""
    from gateway.cli import main

    out, err = io.StringIO(), io.StringIO()
    code = main(list(args), out=out, err=err)
    return subprocess.CompletedProcess(["recon-gateway", *args], code, out.getvalue(),
                                       err.getvalue())


class Server:
    """``recon-gateway serve`` in a child process, on a free loopback port."""

    def __init__(self, *args: str, log: Path, command: str = "serve",
                 env: dict[str, str] | None = None) -> None:
        self.port = free_port()
        self.base = f"http://127.0.0.1:{self.port}"
        self.log_path = log
        self._terminated = False
        self._log = log.open("w")
        self.process = subprocess.Popen(
            [sys.executable, "-m", "gateway.cli", command, "--port", str(self.port), *args],
            stdout=self._log, stderr=subprocess.STDOUT, env={**os.environ, **(env or {})},
        )

    def wait_ready(self, deadline: float = 60) -> None:
        end = time.monotonic() + deadline
        while time.monotonic() < end:
            if self.process.poll() is not None:
                raise AssertionError(f"serve exited early:\n{self.log_path.read_text()}")
            try:
                with urllib.request.urlopen(self.base + "/readyz", timeout=2) as response:  # noqa: S310
                    if response.status == 200:
                        return
            except (urllib.error.URLError, ConnectionError, TimeoutError):
                pass
            time.sleep(0.1)  # polling interval, not a wait for an event
        raise AssertionError(f"serve not ready in {deadline}s:\n{self.log_path.read_text()}")

    def request(self, method: str, path: str, *, key: str | None = None, body: bytes | None = None,
                content_type: str = "application/octet-stream") -> tuple[int, Any]:
        headers = {"Content-Type": content_type}
        if key:
            headers["Authorization"] = f"Bearer {key}"
        req = urllib.request.Request(self.base + path, data=body, method=method,  # noqa: S310
                                     headers=headers)
        try:
            with urllib.request.urlopen(req, timeout=30) as response:  # noqa: S310 - loopback
                return response.status, json.loads(response.read() or b"null")
        except urllib.error.HTTPError as error:
            return error.code, json.loads(error.read() or b"null")

    def terminate(self) -> None:
        """Send SIGTERM, once: a second one would cut the graceful shutdown short."""
        if not self._terminated and self.process.poll() is None:
            self.process.send_signal(signal.SIGTERM)
        self._terminated = True

    def stop(self, timeout: float = 30) -> int:
        self.terminate()
        try:
            code = self.process.wait(timeout)
        finally:
            if not self._log.closed:
                self._log.close()
        return code
