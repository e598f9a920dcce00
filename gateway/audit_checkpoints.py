"""The audit trail's checkpoint key and checkpoints file: both kept outside the database.

- The key file holds the ed25519 private key that signs checkpoints, as UTF-8 JSON
  ``{"format": "recon-gateway audit checkpoint key", "version": 1, "key_id", "key"}``
  (``key``: the raw 32 bytes, standard base64). It is created on first use with mode 0600
  from the first byte, and refused when group or others may read or write it. Beside it,
  ``<key file>.pub.json`` holds the public keys as auditors are given them (docs/audit.md:
  key ids to raw 32-byte public keys in base64).
- The checkpoints file is JSON lines, one signed checkpoint a line (``chain``: the tenant),
  appended to and flushed to disk; never rewritten.

Default places are beside the data folder, not in it (``default_paths``): the data folder
holds the embedded database, and whoever can rewrite the database should not also hold the
checkpoints' key. In production give both to a place the database's administrators cannot
write (``--checkpoint-key``, ``--checkpoints``).
"""

from __future__ import annotations

import base64
import binascii
import json
import os
import secrets
import stat
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from cryptography.hazmat.primitives.asymmetric.ed25519 import (
    Ed25519PrivateKey,
    Ed25519PublicKey,
)
from cryptography.hazmat.primitives.serialization import (
    Encoding,
    NoEncryption,
    PrivateFormat,
    PublicFormat,
)

FORMAT = "recon-gateway audit checkpoint key"


class CheckpointKeyError(RuntimeError):
    """The key file or the checkpoints file cannot be used; the message says why."""


@dataclass(frozen=True, slots=True)
class CheckpointKey:
    key_id: str
    private: Ed25519PrivateKey

    def __repr__(self) -> str:
        return f"CheckpointKey({self.key_id!r})"

    def public_text(self) -> str:
        raw = self.private.public_key().public_bytes(Encoding.Raw, PublicFormat.Raw)
        return base64.b64encode(raw).decode()


def default_paths(data_dir: str) -> tuple[Path, Path]:
    """The key file and checkpoints file beside the data folder."""
    folder = Path(data_dir).resolve()
    return (folder.parent / f"{folder.name}-audit-checkpoint.key",
            folder.parent / f"{folder.name}-audit-checkpoints.jsonl")


def public_keys_path(key_path: Path) -> Path:
    return key_path.with_name(key_path.name + ".pub.json")


def load_or_create(path: Path, now: datetime) -> CheckpointKey:
    """The key in ``path``; a new one written there (mode 0600) when there is none."""
    if not path.exists():
        key = CheckpointKey(f"ck-{now.astimezone(UTC):%Y%m%dt%H%M}-{secrets.token_hex(4)}",
                            Ed25519PrivateKey.generate())
        raw = key.private.private_bytes(Encoding.Raw, PrivateFormat.Raw, NoEncryption())
        text = json.dumps({"format": FORMAT, "version": 1, "key_id": key.key_id,
                           "key": base64.b64encode(raw).decode()}) + "\n"
        path.parent.mkdir(parents=True, exist_ok=True)
        try:
            handle = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
        except FileExistsError:  # another process made it meanwhile: use that one
            return load(path)
        with os.fdopen(handle, "w", encoding="utf-8") as file:
            file.write(text)
            file.flush()
            os.fsync(file.fileno())
        _write_public(public_keys_path(path), key)
        return key
    return load(path)


def load(path: Path) -> CheckpointKey:
    """The key in ``path``; ``CheckpointKeyError`` naming the file and what is wrong."""
    try:
        mode = path.stat().st_mode
        if not stat.S_ISREG(mode):
            raise CheckpointKeyError(f"checkpoint key {path}: not a regular file")
        if mode & 0o077:
            raise CheckpointKeyError(f"checkpoint key {path}: group or others may read or "
                                     f"write it; `chmod 600 {path}`")
        data = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, UnicodeDecodeError, json.JSONDecodeError) as exc:
        raise CheckpointKeyError(f"checkpoint key {path}: cannot be read "
                                 f"({type(exc).__name__})") from None
    if not isinstance(data, dict) or data.get("format") != FORMAT or data.get("version") != 1:
        raise CheckpointKeyError(f"checkpoint key {path}: not a {FORMAT} of version 1")
    try:
        raw = base64.b64decode(str(data["key"]), validate=True)
        private = Ed25519PrivateKey.from_private_bytes(raw)
        key_id = str(data["key_id"])
    except (KeyError, binascii.Error, ValueError):
        raise CheckpointKeyError(f"checkpoint key {path}: its key_id or key is missing or "
                                 f"damaged") from None
    return CheckpointKey(key_id, private)


def _write_public(path: Path, key: CheckpointKey) -> None:
    known = read_public_keys(path) if path.exists() else {}
    texts = {key_id: base64.b64encode(k.public_bytes(Encoding.Raw, PublicFormat.Raw)).decode()
             for key_id, k in known.items()}
    texts[key.key_id] = key.public_text()
    path.write_text(json.dumps(texts, indent=1, sort_keys=True) + "\n", encoding="utf-8")


def read_public_keys(path: Path) -> dict[str, Ed25519PublicKey]:
    """An auditors' keys file: key ids to raw ed25519 public keys in base64."""
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
        return {str(key_id): Ed25519PublicKey.from_public_bytes(base64.b64decode(raw))
                for key_id, raw in data.items()}
    except (OSError, UnicodeDecodeError, json.JSONDecodeError, AttributeError,
            binascii.Error, ValueError) as exc:
        raise CheckpointKeyError(f"public keys {path}: cannot be read "
                                 f"({type(exc).__name__})") from None


def read_checkpoints(path: Path) -> list[dict[str, Any]]:
    """Every checkpoint in the file (none when there is no file yet)."""
    if not path.exists():
        return []
    found = []
    try:
        with path.open(encoding="utf-8") as handle:
            for number, line in enumerate(handle, 1):
                if not line.strip():
                    continue
                item = json.loads(line)
                if not isinstance(item, dict):
                    raise CheckpointKeyError(f"checkpoints {path}: line {number} is not an "
                                             f"object")
                found.append(item)
    except (OSError, UnicodeDecodeError, json.JSONDecodeError) as exc:
        raise CheckpointKeyError(f"checkpoints {path}: cannot be read "
                                 f"({type(exc).__name__}: {exc})") from None
    return found


def append_checkpoint(path: Path, checkpoint: dict[str, Any]) -> None:
    """Add one checkpoint at the end of the file, on disk before this returns."""
    path.parent.mkdir(parents=True, exist_ok=True)
    with path.open("a", encoding="utf-8") as handle:
        handle.write(json.dumps(checkpoint, sort_keys=True) + "\n")
        handle.flush()
        os.fsync(handle.fileno())
