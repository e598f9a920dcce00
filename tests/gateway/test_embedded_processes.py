"""The embedded PostgreSQL server's lifetime, with real ``serve`` processes: it stops with
its last user, even after another user was killed with SIGKILL, and never under a user
that is still running."""

from __future__ import annotations

import os
import shutil
import signal
import socket
import subprocess
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import psutil
import pytest

from gateway.embedded import postmaster
from tests.gateway.processes import Server

READY = 180.0  # a loaded machine starting PostgreSQL and the gateway: generous on purpose


@dataclass(frozen=True)
class Running:
    pid: int
    socket_path: Path


def running(pgdata: Path) -> Running:
    """What ``postmaster.pid`` says of the running server: its process and its socket."""
    lines = (pgdata / "postmaster.pid").read_text().splitlines()
    return Running(int(lines[0]), Path(lines[4]) / f".s.PGSQL.{lines[3]}")


def server_processes(pgdata: Path) -> list[psutil.Process]:
    """Live postgres processes started on this data folder (zombies are dead)."""
    found = []
    for process in psutil.process_iter(["name", "cmdline", "status"]):
        if process.info["name"] == "postgres" and process.info["status"] != "zombie" \
                and str(pgdata) in (process.info["cmdline"] or []):
            found.append(process)
    return found


def accepts(socket_path: Path) -> bool:
    with socket.socket(socket.AF_UNIX, socket.SOCK_STREAM) as sock:
        try:
            sock.connect(str(socket_path))
        except OSError:
            return False
        return True


def wait_stopped(pgdata: Path, server: Running, deadline: float = 120) -> None:
    end = time.monotonic() + deadline
    while time.monotonic() < end:
        if not server_processes(pgdata) and not accepts(server.socket_path):
            return
        time.sleep(0.1)  # polling interval
    raise AssertionError(f"the embedded server in {pgdata} is still running: "
                         f"{[p.pid for p in server_processes(pgdata)]}")


@pytest.fixture
def pgdata(data_dir: Path) -> Iterator[Path]:
    """The data folder's cluster; a server a failing test left running is stopped after it."""
    folder = data_dir / "postgres"
    yield folder.resolve()
    for process in server_processes(folder.resolve()):
        try:
            process.send_signal(signal.SIGQUIT)
            process.wait(60)
        except psutil.Error:
            pass


def serve(data_dir: Path, log: Path) -> Server:
    server = Server("--data-dir", str(data_dir), log=log)
    server.wait_ready(READY)
    return server


def test_a_clean_stop_after_a_sigkill_stops_the_embedded_server(
        tmp_path: Path, data_dir: Path, pgdata: Path) -> None:
    killed = serve(data_dir, tmp_path / "killed.log")
    first = running(pgdata)
    killed.process.send_signal(signal.SIGKILL)
    assert killed.stop(60) == -signal.SIGKILL  # reaped; no SIGTERM is sent to a dead process
    # PostgreSQL runs in a session of its own: a killed gateway leaves it running.
    assert psutil.pid_exists(first.pid) and accepts(first.socket_path)

    again = serve(data_dir, tmp_path / "again.log")
    assert running(pgdata).pid == first.pid  # it joined the server left running
    assert again.stop() == 0
    wait_stopped(pgdata, first)
    assert not (pgdata / "postmaster.pid").exists()


def test_a_gateway_stopping_leaves_the_server_to_another_that_still_runs(
        tmp_path: Path, data_dir: Path, pgdata: Path) -> None:
    one = serve(data_dir, tmp_path / "one.log")
    other = serve(data_dir, tmp_path / "other.log")
    try:
        shared = running(pgdata)
        assert one.stop() == 0
        # The other gateway still reaches its database, on the same server.
        status, _ = other.request("GET", "/readyz")
        assert status == 200
        assert running(pgdata).pid == shared.pid and accepts(shared.socket_path)
        assert other.stop() == 0
        wait_stopped(pgdata, shared)
    finally:
        one.stop()
        other.stop()


def test_a_reused_process_id_is_not_taken_for_the_server(tmp_path: Path) -> None:
    """``postmaster.pid`` left behind by a server that died, its id now another process's:
    that process is never taken for the server (so never signalled to stop)."""
    program = tmp_path / "postgres"  # a process whose name is postgres, and is not ours
    shutil.copy(shutil.which("sleep") or "/bin/sleep", program)
    impostor = subprocess.Popen([str(program), "600"])
    try:
        started = int(psutil.Process(impostor.pid).create_time())

        def pid_file(start_time: int) -> None:
            (tmp_path / "postmaster.pid").write_text("\n".join([
                str(impostor.pid), str(tmp_path), str(start_time), "5432", str(tmp_path), "",
                "0 0", "ready"]) + "\n")

        pid_file(started)
        found = postmaster(tmp_path)
        assert found is not None and found.pid == impostor.pid  # same id, same start time
        pid_file(started - 3600)  # the server the file speaks of started an hour earlier
        assert postmaster(tmp_path) is None
        me = psutil.Process(os.getpid())  # the right start time, but not a postgres program
        (tmp_path / "postmaster.pid").write_text("\n".join([
            str(me.pid), str(tmp_path), str(int(me.create_time())), "5432", str(tmp_path), "",
            "0 0", "ready"]) + "\n")
        assert postmaster(tmp_path) is None
    finally:
        impostor.kill()
        impostor.wait(60)
