"""The keyring file: the one module of ``security`` that touches the file system.

- ``create`` writes a new keyring, never over an existing file; ``replace`` writes a changed
  one (after a rotation or a retirement). Both write a temporary file in the same folder with
  mode 0600 from its creation, flush it to disk, then move it into place in one step (a link
  for ``create``, a rename for ``replace``), so a reader sees the old keyring or the new one,
  never half of one.
- ``read`` refuses a file that group or others may read or write (a symbolic link is followed
  and the file it leads to checked, as mounted secrets are often links), a file that is not
  a regular file (opened without waiting, so a FIFO in its place cannot hang the start), and
  everything ``security.keyring.loads`` refuses, with a ``KeyringError`` naming the file.
- ``replace`` through a symbolic link writes the file the link leads to, beside it, and keeps
  the link: replacing the link itself would leave the file it led to (the keyring as
  provisioned, a mounted secret) holding the old keys, a keyring that no longer unwraps the
  data keys re-wrapped meanwhile. Where that file cannot be written (a read-only mount),
  ``replace`` fails and nothing changes.

Two processes rotating the same keyring at once are not coordinated here: the last rename
wins. The service rotates under a database advisory lock (wired next).
"""

from __future__ import annotations

import contextlib
import os
import secrets
import stat
from pathlib import Path

from security.keyring import Keyring, KeyringError, dumps, loads

MAX_BYTES = 1 << 20  # a keyring of thousands of keys is well under this


def read(path: Path) -> Keyring:
    """The keyring at ``path``; ``KeyringError`` says what is wrong with the file."""
    try:
        fd = os.open(path, os.O_RDONLY | os.O_NONBLOCK)  # a FIFO must not block the start
    except FileNotFoundError:
        raise KeyringError(str(path), "no such file") from None
    except OSError as exc:
        raise KeyringError(str(path), f"cannot be opened: {exc.strerror}") from None
    try:
        info = os.fstat(fd)  # of the file opened, not of a name that may change meanwhile
        if not stat.S_ISREG(info.st_mode):
            raise KeyringError(str(path), "is not a regular file")
        mode = stat.S_IMODE(info.st_mode)
        if mode & 0o077:
            raise KeyringError(str(path), f"group or others may use it (mode {mode:04o}); "
                                          f"allow its owner only: chmod 600 {path}")
        with os.fdopen(os.dup(fd), "rb") as handle:
            data = handle.read(MAX_BYTES + 1)
    finally:
        os.close(fd)
    if len(data) > MAX_BYTES:
        raise KeyringError(str(path), f"larger than {MAX_BYTES} bytes: not a keyring")
    return loads(data, source=str(path))


def create(path: Path, ring: Keyring) -> None:
    """Write a new keyring at ``path``; ``FileExistsError`` if there is one already."""
    _write(path, ring, overwrite=False)


def replace(path: Path, ring: Keyring) -> None:
    """Write ``ring`` over the keyring at ``path`` in one step."""
    _write(path, ring, overwrite=True)


def _write(path: Path, ring: Keyring, *, overwrite: bool) -> None:
    data = dumps(ring)
    if overwrite:  # through a link, the file it leads to (the module's docstring says why)
        path = Path(os.path.realpath(path))
    temporary = path.with_name(f".{path.name}.{secrets.token_hex(6)}.tmp")
    fd = os.open(temporary, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    try:
        with os.fdopen(fd, "wb") as handle:
            os.fchmod(handle.fileno(), 0o600)  # whatever the umask
            handle.write(data)
            handle.flush()
            os.fsync(handle.fileno())
        if overwrite:
            os.replace(temporary, path)
        else:
            os.link(temporary, path)  # fails if path exists: never over another keyring
    finally:
        with contextlib.suppress(FileNotFoundError):
            os.unlink(temporary)
    folder = os.open(path.parent, os.O_RDONLY)
    try:
        os.fsync(folder)
    finally:
        os.close(folder)
