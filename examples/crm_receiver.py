"""An example webhook receiver for recon-gateway events, as a CRM would write it.

Copy this file and adapt it. It needs Python 3.11+ and two packages:
``pip install standardwebhooks jwcrypto``.

What it does with each delivery (an HTTP POST), in this order:

1. **Verify the signature** (``standardwebhooks``). The ``webhook-signature`` header holds
   ``v1,<HMAC-SHA256>`` signatures of ``{webhook-id}.{webhook-timestamp}.{body}``, made
   with the subscription's secret (``whsec_...``). During a secret rotation it holds two;
   one match is enough. A timestamp more than 5 minutes away from our clock is refused, so
   a recorded delivery cannot be sent again later. Failure: ``401``, and the body is never
   decrypted or used.
2. **Check the envelope.** The body is ``{"id": EVENT_ID, "jwe": COMPACT_JWE}``; ``id`` must
   equal the ``webhook-id`` header (``400`` otherwise).
3. **Decrypt** (``jwcrypto``). The JWE is the event encrypted to our public key; its
   protected header names the key (``kid``), and we pick that private key from the key
   file. Only ``RSA-OAEP-256`` or ``ECDH-ES+A256KW`` with ``A256GCM`` are accepted.
   Failure or an unknown ``kid``: ``400``.
4. **Check the event**: its ``id`` must equal the envelope's (``400`` otherwise).
5. **Deduplicate** by event id. Delivery is at least once and replays re-send old events
   with the same id, so a repeat is answered ``2xx`` and marked ``duplicate``.
6. **Detect gaps.** Events come in order per lane (``invoice:<id>``, ``account:<id>``,
   ...), each naming the lane's previous event (``previous_event_id``). If that is not the
   last event we saw on the lane, something is missing and the event is marked ``gap``.
7. **Record it durably**, then answer ``204``. Here "recording" is one JSON line appended
   to the log file: ``{"webhook_id", "event", "duplicate", "gap"}``. Any answer other than
   ``2xx`` (or no answer in time) makes the gateway retry later.

Run it::

    export WEBHOOK_SECRET=whsec_...       # or --secret; several, space-separated, in a rotation
    python examples/crm_receiver.py --port 9000 --private-jwk key.json --log events.jsonl

``key.json`` holds your private JWK, or a JWKS ``{"keys": [...]}`` with several (keep the old
key in it until a key rotation is over). Every key needs its ``kid``. ``--port 0`` picks a
free port. On start it prints ``listening on http://127.0.0.1:PORT``. Without ``--log`` the
lines go to standard output.

This is an example: state is kept in memory and lost on restart. A real CRM keeps the ids
of the events it has taken, and each lane's last event, in its database.
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any, TextIO

from jwcrypto import jwe, jwk
from standardwebhooks.webhooks import Webhook, WebhookVerificationError

ALLOWED_ALGS = ["RSA-OAEP-256", "ECDH-ES+A256KW", "A256GCM"]
MAX_BODY = 1024 * 1024  # events are small; refuse anything much larger


class Rejected(Exception):
    """A delivery we refuse: the HTTP status to answer and a short reason."""

    def __init__(self, status: int, reason: str) -> None:
        super().__init__(reason)
        self.status = status
        self.reason = reason


def load_private_keys(path: str) -> dict[str, jwk.JWK]:
    """The private keys of a JWK or JWKS file, by ``kid``."""
    with open(path, encoding="utf-8") as f:
        document = json.load(f)
    keys: dict[str, jwk.JWK] = {}
    for entry in document.get("keys", [document]):
        kid = entry.get("kid")
        if not kid:
            raise SystemExit(f"{path}: every key needs a kid")
        try:
            key = jwk.JWK(**entry)
        except Exception as exc:
            raise SystemExit(f"{path}: key {kid!r} is not a usable JWK: {exc}") from None
        if not key.has_private:
            raise SystemExit(f"{path}: key {kid!r} is a public key; the private one is needed")
        keys[kid] = key
    return keys


class Receiver:
    """Everything between the HTTP request and the answer, without HTTP."""

    def __init__(self, verifiers: list[Webhook], keys: dict[str, jwk.JWK], log: TextIO) -> None:
        self.verifiers = verifiers  # one per secret we accept
        self.keys = keys
        self.log = log
        # A real CRM stores these in its database, in the same transaction as the effect of
        # the event (the invoice marked paid, ...), so "taken" and "done" cannot drift apart.
        self.seen: set[str] = set()
        self.lanes: dict[str, tuple[int, str]] = {}  # lane -> (last sequence, its event id)
        self.lock = threading.Lock()

    def handle(self, body: bytes, headers: dict[str, str]) -> None:
        """Take one delivery, or raise ``Rejected``."""
        headers = {k.lower(): v for k, v in headers.items()}
        self.verify(body, headers)
        webhook_id = headers["webhook-id"]
        try:
            envelope = json.loads(body)
        except ValueError:
            raise Rejected(400, "body is not JSON") from None
        if not isinstance(envelope, dict) or not isinstance(envelope.get("jwe"), str):
            raise Rejected(400, "body is not an envelope {id, jwe}")
        if envelope.get("id") != webhook_id:
            raise Rejected(400, "envelope id differs from webhook-id")
        event = self.decrypt(envelope["jwe"])
        if event.get("id") != webhook_id:
            raise Rejected(400, "event id differs from envelope id")
        lane = event.get("lane")
        sequence = event.get("sequence")
        previous = event.get("previous_event_id")
        if (not isinstance(lane, str) or type(sequence) is not int or sequence < 1
                or not (previous is None or isinstance(previous, str))):
            raise Rejected(400, "event lacks a valid lane, sequence or previous_event_id")
        self.record(webhook_id, event, lane, sequence, previous)

    def verify(self, body: bytes, headers: dict[str, str]) -> None:
        """Check the signature with each secret we hold; one that matches is enough."""
        reason = "no secret"
        for verifier in self.verifiers:
            try:
                verifier.verify(body, headers, json_parse=False)
            except WebhookVerificationError as exc:
                reason = str(exc)
            except ValueError:  # a malformed header or a body that is not UTF-8
                reason = "malformed signature headers or body"
            else:
                return
        raise Rejected(401, f"signature not verified: {reason}")

    def decrypt(self, token: str) -> dict[str, Any]:
        """The event inside a compact JWE, decrypted with the key its header names."""
        if token.count(".") != 4:
            raise Rejected(400, "jwe is not in compact serialization")
        message = jwe.JWE(algs=ALLOWED_ALGS)
        try:
            message.deserialize(token)
            header = message.jose_header
        except Exception:  # jwcrypto raises several kinds for a malformed token
            raise Rejected(400, "jwe is malformed") from None
        if "zip" in header:
            raise Rejected(400, "compressed jwe refused")
        kid = header.get("kid")
        key = self.keys.get(kid) if isinstance(kid, str) else None
        if key is None:
            raise Rejected(400, f"unknown key id {kid!r}")
        try:
            message.decrypt(key)
            event = json.loads(message.payload)
        except Exception:
            raise Rejected(400, "jwe does not decrypt to a JSON event") from None
        if not isinstance(event, dict):
            raise Rejected(400, "event is not a JSON object")
        return event

    def record(self, webhook_id: str, event: dict[str, Any], lane: str, sequence: int,
               previous: str | None) -> None:
        """Deduplicate, look for a gap, and write the event down before answering 2xx."""
        with self.lock:  # requests run in threads; one at a time through here
            # A repeat is answered 2xx like the first time; a real CRM does not apply it again.
            duplicate = webhook_id in self.seen
            last = self.lanes.get(lane)
            if duplicate:
                gap = False
            elif last is None:
                gap = sequence != 1  # the lane's earlier events never reached us
            elif sequence > last[0]:
                gap = previous != last[1]
            else:
                gap = False  # an older event arriving late (a replay) fills a gap
            # A real CRM would fetch the missing events from GET /v1/events on a gap (or ask
            # for a replay) before acting on this one.
            line = {"webhook_id": webhook_id, "event": event, "duplicate": duplicate,
                    "gap": gap}
            self.log.write(json.dumps(line) + "\n")
            self.log.flush()
            if self.log is not sys.stdout:
                os.fsync(self.log.fileno())  # durably taken, then 2xx
            if not duplicate:
                self.seen.add(webhook_id)
                if last is None or sequence > last[0]:
                    self.lanes[lane] = (sequence, webhook_id)


def make_handler(receiver: Receiver) -> type[BaseHTTPRequestHandler]:
    class Handler(BaseHTTPRequestHandler):
        timeout = 30  # seconds: a client that stalls does not hold a thread forever

        def do_POST(self) -> None:
            try:
                length = int(self.headers.get("Content-Length", ""))
            except ValueError:
                length = -1
            if length < 0:
                self.answer(411, "Content-Length required")
                return
            if length > MAX_BODY:
                self.answer(413, "body too large")
                return
            body = self.rfile.read(length)
            try:
                receiver.handle(body, dict(self.headers.items()))
            except Rejected as exc:
                self.answer(exc.status, exc.reason)
            except OSError:
                self.answer(500, "could not record the event")  # the gateway will retry
            else:
                self.answer(204, "")

        def answer(self, status: int, reason: str) -> None:
            data = (reason + "\n").encode() if reason else b""
            self.send_response(status)
            if data:
                self.send_header("Content-Type", "text/plain; charset=utf-8")
            self.send_header("Content-Length", str(len(data)))
            self.end_headers()
            self.wfile.write(data)
            if reason:
                self.log_message("%s", reason)

    return Handler


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--host", default="127.0.0.1", help="address to listen on")
    parser.add_argument("--port", type=int, default=9000, help="0 picks a free port")
    parser.add_argument("--secret", default=os.environ.get("WEBHOOK_SECRET", ""),
                        help="whsec_... signing secret(s), space-separated "
                             "(default: env WEBHOOK_SECRET)")
    parser.add_argument("--private-jwk", required=True, metavar="FILE",
                        help="a private JWK, or a JWKS {\"keys\": [...]}, as JSON")
    parser.add_argument("--log", metavar="FILE", help="append accepted events here (JSON lines)")
    args = parser.parse_args(argv)

    if not args.secret.split():
        parser.error("a signing secret is needed: --secret or WEBHOOK_SECRET")
    try:
        verifiers = [Webhook(secret) for secret in args.secret.split()]
    except Exception:
        parser.error("a signing secret is not whsec_ followed by base64")
    keys = load_private_keys(args.private_jwk)
    # open for the server's lifetime, closed in the finally below (hence no with-block)
    log = open(args.log, "a", encoding="utf-8") if args.log else sys.stdout  # noqa: SIM115
    receiver = Receiver(verifiers, keys, log)

    server = ThreadingHTTPServer((args.host, args.port), make_handler(receiver))
    host, port = server.server_address[:2]
    print(f"listening on http://{host}:{port}", flush=True)
    try:
        server.serve_forever()
    except KeyboardInterrupt:
        pass
    finally:
        server.server_close()
        if log is not sys.stdout:
            log.close()


if __name__ == "__main__":
    main()
