"""The issue's end to end: a CRM subscribes to the demo, and the example receiver
(examples/crm_receiver.py, which verifies and decrypts with standard libraries only)
receives and checks every event of it; then it survives its own outage."""

from __future__ import annotations

import json
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

from jwcrypto import jwk

from tests.gateway.processes import Server, free_port
from tests.paths import ROOT

RECEIVER = ROOT / "examples" / "crm_receiver.py"


def _json(server: Server, method: str, path: str, key: str, body: Any) -> tuple[int, Any]:
    return server.request(method, path, key=key, body=json.dumps(body).encode(),
                          content_type="application/json")


def _lines(path: Path) -> list[dict[str, Any]]:
    if not path.exists():
        return []
    return [json.loads(line) for line in path.read_text().splitlines() if line.strip()]


# Retries a second apart for two minutes: the CRM's outage (noticing two failed attempts,
# then starting it again, a process that imports its libraries) must end before the
# schedule does, or the first event is given up; on a loaded machine that can take long.
OUTAGE_SCHEDULE = ",".join(["0", "0.1", "0.2", "0.5"] + ["1"] * 120)


def _until(check: Any, what: str, timeout: float = 60) -> None:
    deadline = time.monotonic() + timeout
    while not check():
        if time.monotonic() > deadline:
            raise AssertionError(f"{what} did not happen within {timeout}s")
        time.sleep(0.05)  # polling interval


class Crm:
    """examples/crm_receiver.py as a process on a fixed port."""

    def __init__(self, port: int, secret: str, keyfile: Path, log: Path) -> None:
        self.args = [sys.executable, str(RECEIVER), "--port", str(port), "--secret", secret,
                     "--private-jwk", str(keyfile), "--log", str(log)]
        self.process: subprocess.Popen[str] | None = None

    def start(self) -> None:
        self.process = subprocess.Popen(self.args, stdout=subprocess.PIPE,
                                        stderr=subprocess.DEVNULL, text=True)
        assert self.process.stdout is not None
        assert self.process.stdout.readline().startswith("listening on")

    def stop(self) -> None:
        if self.process is None:
            return
        if self.process.poll() is None:
            self.process.terminate()
            self.process.wait(10)
        if self.process.stdout is not None:
            self.process.stdout.close()


def test_a_crm_receives_every_demo_event_and_survives_its_own_outage(
        tmp_path: Path, data_dir: Path) -> None:
    private = jwk.JWK.generate(kty="EC", crv="P-256", kid="demo-crm")
    keyfile = tmp_path / "key.json"
    keyfile.write_text(private.export_private())
    server = Server("--data-dir", str(data_dir), log=tmp_path / "demo.log", command="demo",
                    env={"RECON_WEBHOOK_RETRY_SCHEDULE": OUTAGE_SCHEDULE})
    crm = None
    try:
        server.wait_ready()
        key = next(line.split()[2] for line in server.log_path.read_text().splitlines()
                   if line.strip().startswith("demo key"))
        port = free_port()
        status, subscription = _json(server, "POST", "/v1/subscriptions", key, {
            "url": f"http://127.0.0.1:{port}/", "event_types": ["*"],
            "public_jwk": private.export_public(as_dict=True)})
        assert status == 201, subscription
        status, feed = _json(server, "POST", "/v1/subscriptions", key, {
            "url": None, "event_types": ["*"],
            "public_jwk": private.export_public(as_dict=True)})
        status, page = server.request(
            "GET", f"/v1/events?subscription_id={feed['id']}&limit=1000", key=key)
        expected = {item["id"] for item in page["items"]}
        assert len(expected) >= 8  # statements, payments, paid invoices
        log = tmp_path / "events.jsonl"
        crm = Crm(port, subscription["secret"], keyfile, log)
        crm.start()
        status, queued = _json(server, "POST",
                               f"/v1/subscriptions/{subscription['id']}/replay", key,
                               {"since": "2000-01-01T00:00:00Z"})
        assert (status, queued["queued"]) == (202, len(expected))
        _until(lambda: {e["webhook_id"] for e in _lines(log)} == expected,
               "every demo event at the CRM")
        taken = _lines(log)
        assert not any(e["gap"] or e["duplicate"] for e in taken)
        types = {e["event"]["type"] for e in taken}
        assert {"statement.imported", "payment.received", "invoice.paid"} <= types

        # The CRM goes down; new events wait; it comes back and gets them, in order.
        crm.stop()
        statement = (ROOT / "tests" / "data" / "mt940").glob("*.sta")
        extra = next(p for p in sorted(statement) if "expected" not in p.name)
        status, imported = server.request("POST", "/v1/statements", key=key,
                                          body=extra.read_bytes())
        assert status == 201, imported
        # Its payments are matched in the background: their events come once that is done.
        _until(lambda: server.request("GET", "/v1/reconcile", key=key)[1]["status"] == "idle",
               "matching of the new statement")
        status, page = server.request(
            "GET", f"/v1/events?subscription_id={feed['id']}&limit=1000", key=key)
        everything = {item["id"] for item in page["items"]}
        assert everything > expected
        pending = f"/v1/subscriptions/{subscription['id']}/deliveries?status=pending"
        _until(lambda: any(d["attempts"] >= 2 and d["last_error"]
                           for d in server.request("GET", pending, key=key)[1]["items"]),
               "failed attempts at the CRM while it is down")
        crm.start()
        _until(lambda: {e["webhook_id"] for e in _lines(log)} == everything,
               "the backlog after the outage")
        assert not any(e["gap"] for e in _lines(log))
    finally:
        if crm is not None:
            crm.stop()
        assert server.stop() == 0
