"""Migrated test databases, emptied and used again rather than made anew for every test.

Creating a database copies its template's catalogs and migrating it runs every migration:
together about a second a test on a loaded machine, and once most of the suite's time.
A test that asks for a migrated database (``migrated_database_url``, which ``api`` and
``pool`` ask for) gets one that an earlier test has used and given back, and that has been
brought back to exactly what ``migrate`` leaves on a new database:

- no session of the earlier test is left (each is ended, and waited for);
- every table but ``schema_migrations`` is empty (those written to, even by a transaction
  rolled back, are truncated), every sequence is back at its start, the planner's counts of
  pages and rows are those of a new database, and the activity counters that decide when
  autovacuum looks at a table are reset;
- then a digest compares the database with one just migrated: the same schemas, tables,
  columns, defaults, indexes, constraints, triggers, functions, types, extensions and
  ``schema_migrations`` rows, the same sizes on disk and planner's counts, no statistics
  gathered (a plan made on them could differ from a new database's), no setting of the
  database's own, connections allowed, no large object or prepared transaction.

A database that differs, or that could not be emptied, is dropped, never lent again. So a
test sees a database as new, for about a fifth of a second rather than a second or more.
"""

from __future__ import annotations

import asyncio
import logging
import uuid
from urllib.parse import urlsplit, urlunsplit

import asyncpg

logger = logging.getLogger(__name__)

SESSIONS_DEADLINE = 30.0  # seconds for the sessions of an earlier test to end

# Everything of a migrated database that a test could change, but its rows, as one digest.
SCHEMA_DIGEST = """
WITH ours AS (SELECT oid, nspname, nspacl FROM pg_namespace
               WHERE nspname NOT IN ('pg_catalog', 'information_schema')
                 AND nspname NOT LIKE 'pg_toast%' AND nspname NOT LIKE 'pg_temp%')
SELECT md5(string_agg(item, E'\\n' ORDER BY item)) FROM (
  SELECT 'schema ' || n.nspname || ' ' || coalesce(n.nspacl::text, '') AS item FROM ours n
  UNION ALL
  SELECT format('relation %s %s %s %s %s %s %s %s %s', c.oid::regclass, c.relkind,
                c.relpersistence, c.relrowsecurity, coalesce(c.relacl::text, ''),
                c.relpages, c.reltuples, c.relallvisible, pg_total_relation_size(c.oid))
    FROM pg_class c JOIN ours n ON n.oid = c.relnamespace
  UNION ALL
  SELECT format('column %s %s %s %s %s %s %s', a.attrelid::regclass, a.attnum, a.attname,
                format_type(a.atttypid, a.atttypmod), a.attnotnull, a.attgenerated,
                pg_get_expr(d.adbin, d.adrelid))
    FROM pg_attribute a JOIN pg_class c ON c.oid = a.attrelid
    JOIN ours n ON n.oid = c.relnamespace
    LEFT JOIN pg_attrdef d ON d.adrelid = a.attrelid AND d.adnum = a.attnum
   WHERE a.attnum > 0 AND NOT a.attisdropped
  UNION ALL
  SELECT 'index ' || pg_get_indexdef(i.indexrelid)
    FROM pg_index i JOIN pg_class c ON c.oid = i.indexrelid JOIN ours n ON n.oid = c.relnamespace
  UNION ALL
  SELECT format('constraint %s %s %s', co.conrelid::regclass, co.conname,
                pg_get_constraintdef(co.oid))
    FROM pg_constraint co JOIN ours n ON n.oid = co.connamespace
  UNION ALL
  SELECT 'trigger ' || pg_get_triggerdef(t.oid) FROM pg_trigger t WHERE NOT t.tgisinternal
  UNION ALL
  SELECT format('function %s %s', p.oid::regprocedure, md5(pg_get_functiondef(p.oid)))
    FROM pg_proc p JOIN ours n ON n.oid = p.pronamespace WHERE p.prokind IN ('f', 'p')
  UNION ALL
  SELECT format('type %s %s', t.oid::regtype, t.typtype)
    FROM pg_type t JOIN ours n ON n.oid = t.typnamespace
  UNION ALL
  SELECT format('enum %s %s %s', e.enumtypid::regtype, e.enumsortorder, e.enumlabel)
    FROM pg_enum e
  UNION ALL
  SELECT format('view %s %s', c.oid::regclass, md5(pg_get_viewdef(c.oid)))
    FROM pg_class c JOIN ours n ON n.oid = c.relnamespace WHERE c.relkind IN ('v', 'm')
  UNION ALL
  SELECT format('sequence %s %s %s %s %s %s %s', s.seqrelid::regclass, s.seqtypid::regtype,
                s.seqstart, s.seqincrement, s.seqmin, s.seqmax, s.seqcycle)
    FROM pg_sequence s
  UNION ALL
  SELECT format('policy %s %s', p.polrelid::regclass, p.polname) FROM pg_policy p
  UNION ALL
  SELECT 'extension ' || x.extname || ' ' || x.extversion FROM pg_extension x
  UNION ALL
  SELECT format('migration %s %s', m.version, m.name) FROM schema_migrations m
  UNION ALL
  SELECT format('database %s %s %s', d.datallowconn, d.datconnlimit, d.datacl)
    FROM pg_database d WHERE d.datname = current_database()
  UNION ALL
  SELECT 'setting ' || array_to_string(s.setconfig, ' ')
    FROM pg_db_role_setting s JOIN pg_database d ON d.oid = s.setdatabase
   WHERE d.datname = current_database()
  UNION ALL
  SELECT format('statistics %s %s', st.starelid::regclass, st.staattnum)
    FROM pg_statistic st JOIN pg_class c ON c.oid = st.starelid
    JOIN ours n ON n.oid = c.relnamespace
  UNION ALL
  SELECT 'large object ' || l.oid FROM pg_largeobject_metadata l
  UNION ALL
  SELECT 'prepared transaction ' || x.gid
    FROM pg_prepared_xacts x WHERE x.database = current_database()
) AS everything
"""

# The tables a test has written to, even in a transaction rolled back: only those have a
# page (a table emptied by vacuum, its indexes not, shows in the digest's sizes).
WRITTEN = """
SELECT coalesce(array_agg(t ORDER BY t), '{}') FROM unnest($1::text[]) AS t
 WHERE pg_relation_size(t::regclass) > 0
"""

TABLES = """
SELECT format('%I.%I', n.nspname, c.relname)
  FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace
 WHERE n.nspname NOT IN ('pg_catalog', 'information_schema')
   AND n.nspname NOT LIKE 'pg_toast%' AND n.nspname NOT LIKE 'pg_temp%'
   AND c.relkind IN ('r', 'p') AND NOT c.relispartition
   AND (n.nspname, c.relname) <> ('public', 'schema_migrations')
 ORDER BY 1
"""

# The planner's counts of pages and rows of every relation. TRUNCATE resets an index's to
# "never counted" (0 pages, -1 rows) where a new database's read 1 page of 0 rows, and a
# new estimate could change a plan: they are put back as a new database has them.
SIZES = """
SELECT array_agg(format('%I.%I', n.nspname, c.relname) ORDER BY c.oid),
       array_agg(c.relpages ORDER BY c.oid), array_agg(c.reltuples ORDER BY c.oid),
       array_agg(c.relallvisible ORDER BY c.oid)
  FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace
 WHERE n.nspname NOT IN ('pg_catalog', 'information_schema')
   AND n.nspname NOT LIKE 'pg_toast%' AND n.nspname NOT LIKE 'pg_temp%'
"""

RESTORE_SIZES = """
UPDATE pg_class c SET relpages = s.relpages, reltuples = s.reltuples,
                      relallvisible = s.relallvisible
  FROM unnest($1::text[], $2::integer[], $3::real[], $4::integer[])
       AS s (relation, relpages, reltuples, relallvisible)
 WHERE c.oid = s.relation::regclass
   AND (c.relpages, c.reltuples, c.relallvisible)
       IS DISTINCT FROM (s.relpages, s.reltuples, s.relallvisible)
"""

RESET_SEQUENCES = """
SELECT count(setval(s.seqrelid, s.seqstart, false)) FROM pg_sequence s
"""


def with_database(url: str, database: str) -> str:
    """``url`` with its database replaced by ``database``."""
    parts = urlsplit(url)
    return urlunsplit(parts._replace(path="/" + database))


async def create_database(server_url: str, name: str) -> None:
    admin = await asyncpg.connect(server_url)
    try:
        await admin.execute(f'CREATE DATABASE "{name}"')
    finally:
        await admin.close()


async def drop_database(server_url: str, name: str) -> None:
    admin = await asyncpg.connect(server_url)
    try:
        await admin.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
    finally:
        await admin.close()


class MigratedDatabases:
    """The migrated databases of one server: lent to one test at a time, emptied when
    given back. Lent last in, first out, so a run mostly uses one."""

    def __init__(self, server_url: str) -> None:
        self.server_url = server_url
        self.free: list[str] = []
        self.made: set[str] = set()
        self.digest: str | None = None  # of a database just migrated, on this server
        self.tables: list[str] = []  # every table but schema_migrations
        self.sizes: tuple[list[str], list[int], list[float], list[int]] = ([], [], [], [])

    async def lend(self) -> str:
        """The name of a migrated, empty database for one test to use."""
        if self.free:
            return self.free.pop()
        from gateway.migrate import migrate

        name = f"recon_test_{uuid.uuid4().hex[:12]}"
        await create_database(self.server_url, name)
        self.made.add(name)
        conn = await asyncpg.connect(with_database(self.server_url, name))
        try:
            await migrate(conn)
            digest = await conn.fetchval(SCHEMA_DIGEST)
            if self.digest is None:
                self.digest = digest
                self.tables = await conn.fetchval(f"SELECT array({TABLES})")
                names, pages, rows, visible = await conn.fetchrow(SIZES)
                self.sizes = (names, pages, rows, visible)
            elif digest != self.digest:  # a migration that is not deterministic
                raise AssertionError(f"two migrated databases differ: {digest} {self.digest}")
        finally:
            await conn.close()
        return name

    async def give_back(self, name: str) -> None:
        """Empty the database for the next test, or drop it if it cannot be made as new."""
        try:
            reusable = await self._empty(name)
        except (OSError, asyncpg.PostgresError, asyncpg.InterfaceError) as exc:
            logger.info("test database %s not emptied (%s): dropped", name, exc)
            reusable = False
        if reusable:
            self.free.append(name)
        else:
            await drop_database(self.server_url, name)
            self.made.discard(name)

    async def _empty(self, name: str) -> bool:
        conn = await asyncpg.connect(with_database(self.server_url, name))
        try:
            if not await _sessions_ended(conn):
                logger.info("test database %s still has sessions: dropped", name)
                return False
            async with conn.transaction():
                written = await conn.fetchval(WRITTEN, self.tables)
                if written:
                    # The audit trail's trigger refuses TRUNCATE; as a superuser, this session
                    # may have triggers not fire (migration 0014).
                    await conn.execute("SET LOCAL session_replication_role = replica")
                    await conn.execute(f"TRUNCATE {', '.join(written)} CASCADE")
                await conn.fetchval(RESET_SEQUENCES)
                await conn.execute(RESTORE_SIZES, *self.sizes)
            await conn.execute("SELECT pg_stat_reset()")
            if await conn.fetchval(SCHEMA_DIGEST) != self.digest:
                logger.info("test database %s not as new after its test: dropped", name)
                return False
            return True
        finally:
            await conn.close()

    async def drop_all(self) -> None:
        for name in sorted(self.made):
            await drop_database(self.server_url, name)
        self.made.clear()
        self.free.clear()


async def _sessions_ended(conn: asyncpg.Connection) -> bool:
    """End every other session on this database; whether they were gone in time."""
    others = ("FROM pg_stat_activity WHERE datname = current_database()"
              " AND backend_type = 'client backend' AND pid <> pg_backend_pid()")
    await conn.execute(f"SELECT pg_terminate_backend(pid) {others}")
    deadline = asyncio.get_running_loop().time() + SESSIONS_DEADLINE
    while await conn.fetchval(f"SELECT count(*) {others}"):
        if asyncio.get_running_loop().time() > deadline:
            return False
        await asyncio.sleep(0.02)  # polling interval
    return True
