"""docs/walkthrough.md, run as written, so that a new user can trust every command in it.

Every ```` ```sh ```` block of the page is a step, run in order in one bash session (so
shell variables carry from one step to the next, as in a reader's terminal) against a live
service started as a real process on an embedded database in a temporary folder. A line
``# expect: TEXT`` in a step says that TEXT is in that step's output (standard output and
error together). Two markers, HTML comments just above a block, change that:

- ``<!-- walkthrough: service -->``: the command that starts the service, in the reader's
  first terminal. Its ``export NAME=VALUE`` lines are its environment and its last line
  its command, started here (with ``RECON_PORT`` set to a free port) before the steps.
- ``<!-- walkthrough: skip (why) -->``: shown to the reader, not run.

The steps run in the temporary folder, which holds a link to ``examples/`` as a clone
would, with ``GW`` and ``CRM_PORT`` set to free ports (the page keeps values set before).
One service for the whole page; the test needs ``curl`` and ``jq`` and is skipped, saying
so, without them.
"""

from __future__ import annotations

import contextlib
import os
import re
import shlex
import shutil
import signal
import socket
import subprocess
import sys
import time
import urllib.error
import urllib.request
from dataclasses import dataclass
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
DOC = ROOT / "docs" / "walkthrough.md"
BIN = Path(sys.executable).parent  # the virtualenv's bin: recon-gateway, python
STEP_MARK = "@@walkthrough-step "
STARTUP_DEADLINE = 180.0  # seconds for the embedded server and the service to start
WALK_DEADLINE = 600.0  # seconds for every step together (about 30 on an idle machine)

_BLOCK = re.compile(r"(?:<!-- walkthrough: (?P<mark>[a-z]+)[^\n]*-->\n)?```sh\n(?P<body>.*?)```",
                    re.DOTALL)
_EXPECT = re.compile(r"^# expect: (.+)$", re.MULTILINE)


@dataclass(frozen=True, slots=True)
class Block:
    mark: str | None  # None: a step
    body: str
    line: int  # where it starts in docs/walkthrough.md

    @property
    def expected(self) -> list[str]:
        return _EXPECT.findall(self.body)


def blocks(text: str) -> list[Block]:
    found = [Block(m["mark"], m["body"], text.count("\n", 0, m.start("body")) + 1)
             for m in _BLOCK.finditer(text)]
    unknown = [b for b in found if b.mark not in (None, "service", "skip")]
    assert not unknown, f"unknown walkthrough markers at lines {[b.line for b in unknown]}"
    return found


def service_command(block: Block) -> tuple[dict[str, str], list[str]]:
    """The environment (its ``export`` lines) and the command (its last line)."""
    lines = [line for line in block.body.splitlines() if line.strip()]
    env = {}
    for line in lines[:-1]:
        name, _, value = line.removeprefix("export ").partition("=")
        assert line.startswith("export ") and value, f"not an export: {line!r}"
        env[name] = value
    return env, shlex.split(lines[-1])


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port: int = probe.getsockname()[1]
        return port


def own_environment(**extra: str) -> dict[str, str]:
    """This environment without any RECON_ setting of the developer's (a database URL would
    send the walk-through to their database), with the virtualenv first on the PATH."""
    env = {k: v for k, v in os.environ.items() if not k.startswith("RECON_")}
    env["PATH"] = f"{BIN}{os.pathsep}{env.get('PATH', '')}"
    env.update(extra)
    return env


def wait_ready(url: str, service: subprocess.Popen[bytes], log: Path) -> None:
    deadline = time.monotonic() + STARTUP_DEADLINE
    while time.monotonic() < deadline:
        if service.poll() is not None:
            pytest.fail(f"the service exited with {service.returncode}:\n{tail(log)}")
        try:
            with urllib.request.urlopen(f"{url}/readyz", timeout=5) as answer:  # noqa: S310
                if answer.status == 200:
                    return
        except (urllib.error.URLError, OSError):
            pass
        time.sleep(0.2)  # polling interval, under the deadline above
    pytest.fail(f"the service was not ready within {STARTUP_DEADLINE:.0f} s:\n{tail(log)}")


def tail(path: Path, lines: int = 40) -> str:
    text = path.read_text(encoding="utf-8", errors="replace") if path.exists() else ""
    return "\n".join(text.splitlines()[-lines:])


def outputs_by_step(text: str) -> dict[int, str]:
    chunks: dict[int, str] = {}
    for part in text.split(STEP_MARK)[1:]:
        number, _, output = part.partition("\n")
        if number.isdigit():
            chunks[int(number)] = output
    return chunks


def test_the_page_is_steps_and_one_service() -> None:
    found = blocks(DOC.read_text(encoding="utf-8"))
    services = [b for b in found if b.mark == "service"]
    assert len(services) == 1
    env, command = service_command(services[0])
    assert command[:2] == ["recon-gateway", "serve"] and "RECON_DATA_DIR" in env
    steps = [b for b in found if b.mark is None]
    assert len(steps) > 20 and all(b.expected for b in steps[:3])


@pytest.mark.skipif(not (shutil.which("curl") and shutil.which("jq")),
                    reason="the walk-through runs curl and jq, and this machine lacks one")
def test_every_step_of_the_walkthrough_works_as_written(tmp_path: Path) -> None:
    found = blocks(DOC.read_text(encoding="utf-8"))
    steps = [b for b in found if b.mark is None]
    service_env, command = service_command(next(b for b in found if b.mark == "service"))
    (tmp_path / "examples").symlink_to(ROOT / "examples", target_is_directory=True)
    port, crm_port = free_port(), free_port()
    gateway = f"http://127.0.0.1:{port}"
    service_log = tmp_path / "service.log"
    with service_log.open("wb") as log:
        service = subprocess.Popen(command, cwd=tmp_path, stdout=log, stderr=subprocess.STDOUT,
                                   env=own_environment(**service_env, RECON_PORT=str(port)),
                                   start_new_session=True)
    try:
        wait_ready(gateway, service, service_log)
        output, code = run_steps(steps, tmp_path, gateway, crm_port)
    finally:
        service.send_signal(signal.SIGTERM)  # as Ctrl-C: requests finish, the database stops
        try:
            service.wait(timeout=STARTUP_DEADLINE)
        except subprocess.TimeoutExpired:
            service.kill()
            service.wait()
    chunks = outputs_by_step(output)
    if code != 0:
        failed = max(chunks, default=0)
        pytest.fail(f"step {failed + 1} (docs/walkthrough.md line {steps[failed].line}) "
                    f"failed, bash exit status {code}:\n{steps[failed].body}\n--- output:\n"
                    f"{chunks.get(failed, output)}\n--- service log:\n{tail(service_log)}")
    missing = [f"step {n + 1} (docs/walkthrough.md line {step.line}) lacks {want!r}; "
               f"its output:\n{chunks.get(n, '')}"
               for n, step in enumerate(steps) for want in step.expected
               if want not in chunks.get(n, "")]
    assert not missing, "\n\n".join(missing)


def run_steps(steps: list[Block], folder: Path, gateway: str,
              crm_port: int) -> tuple[str, int]:
    """Every step in one bash session; their output, marked per step, and bash's status."""
    script = ["set -euo pipefail"]
    for number, step in enumerate(steps):
        script += [f"printf '\\n{STEP_MARK}%d\\n' {number}", step.body]
    transcript = folder / "steps.out"
    with transcript.open("wb") as out:
        bash = subprocess.Popen(["bash", "-c", "\n".join(script)], cwd=folder, stdout=out,
                                stderr=subprocess.STDOUT, start_new_session=True,
                                env=own_environment(GW=gateway, CRM_PORT=str(crm_port)))
        try:
            code = bash.wait(timeout=WALK_DEADLINE)
        except subprocess.TimeoutExpired:
            code = -1
        finally:
            # What the steps left running (the CRM receiver, if a step failed before the
            # one that stops it) is in bash's process group: stop it with bash.
            with contextlib.suppress(ProcessLookupError):
                os.killpg(bash.pid, signal.SIGTERM)
            bash.wait()
    return transcript.read_text(encoding="utf-8", errors="replace"), code
