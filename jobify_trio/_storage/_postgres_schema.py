"""The PostgreSQL table layout (schema version 2 of the PostgreSQL store) and its check.

Tables live in ``schema`` (created if missing) and are named ``<prefix>_jobs``,
``<prefix>_meta`` (the schema version), ``<prefix>_instances``, ``<prefix>_claims``,
``<prefix>_results``, ``<prefix>_commands`` and ``<prefix>_runs`` (the run history).
Creation runs in one transaction under an advisory lock, so instances starting together
do not race. Version 1 lacked the ``paused`` column and the run history: it is migrated
in place (one transaction, under the same lock) when a version 2 store opens it.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any, Final

import attrs

from ..storage import StorageError, validate_table_name

if TYPE_CHECKING:
    import psycopg

__all__ = ["PG_SCHEMA_VERSION", "Names", "create_or_check"]

#: Version of the table layout written by :class:`~jobify_trio.storage.PostgresStorage`.
PG_SCHEMA_VERSION: Final = 2

_DDL: Final = """
CREATE TABLE IF NOT EXISTS {jobs} (
    job_id text PRIMARY KEY,
    task text NOT NULL,
    trigger text NOT NULL,
    next_run_at timestamptz NOT NULL,
    arguments bytea NOT NULL,
    attempt integer NOT NULL DEFAULT 1,
    state text NOT NULL DEFAULT 'scheduled',
    cron text,
    lease_owner text,
    lease_expires_at timestamptz,
    origin text,
    paused boolean NOT NULL DEFAULT false
);
CREATE INDEX IF NOT EXISTS {p}_jobs_next_run_at ON {jobs} (next_run_at);
CREATE INDEX IF NOT EXISTS {p}_jobs_lease_owner ON {jobs} (lease_owner);
CREATE TABLE IF NOT EXISTS {instances} (
    instance_id text PRIMARY KEY,
    host text NOT NULL,
    pid integer NOT NULL,
    started_at timestamptz NOT NULL,
    heartbeat_at timestamptz NOT NULL
);
CREATE TABLE IF NOT EXISTS {claims} (
    job_id text NOT NULL,
    slot timestamptz NOT NULL,
    owner text NOT NULL,
    claimed_at timestamptz NOT NULL,
    PRIMARY KEY (job_id, slot)
);
CREATE INDEX IF NOT EXISTS {p}_claims_claimed_at ON {claims} (claimed_at);
CREATE TABLE IF NOT EXISTS {results} (
    job_id text PRIMARY KEY,
    origin text,
    status text NOT NULL,
    value bytea,
    error text,
    finished_at timestamptz NOT NULL
);
CREATE TABLE IF NOT EXISTS {commands} (
    command_id bigserial PRIMARY KEY,
    target text NOT NULL,
    job_id text NOT NULL,
    kind text NOT NULL,
    payload bytea NOT NULL,
    created_at timestamptz NOT NULL
);
CREATE INDEX IF NOT EXISTS {p}_commands_target ON {commands} (target);
{runs_ddl}
"""

_RUNS: Final = """
CREATE TABLE IF NOT EXISTS {runs} (
    run_id bigserial PRIMARY KEY,
    job_id text NOT NULL,
    task text NOT NULL,
    attempt integer NOT NULL,
    status text NOT NULL,
    started_at timestamptz,
    ended_at timestamptz NOT NULL,
    error text,
    retried boolean NOT NULL DEFAULT false,
    instance text
);
CREATE INDEX IF NOT EXISTS {p}_runs_job ON {runs} (job_id, run_id)
"""

_V2_MIGRATION: Final = """
ALTER TABLE {jobs} ADD COLUMN IF NOT EXISTS paused boolean NOT NULL DEFAULT false;
{runs_ddl}
"""


@attrs.frozen
class Names:
    """Quoted, schema-qualified table names and the notification channel of one store."""

    schema: str
    prefix: str

    def __attrs_post_init__(self) -> None:
        for what, name in (("schema", self.schema), ("table_prefix", f"{self.prefix}_commands")):
            try:
                validate_table_name(name)
            except ValueError as exc:
                raise ValueError(f"PostgresStorage {what}: {exc}") from None

    def table(self, suffix: str) -> str:
        return f'"{self.schema}"."{self.prefix}_{suffix}"'

    @property
    def jobs(self) -> str:
        return self.table("jobs")

    @property
    def channel_name(self) -> str:
        """The ``LISTEN``/``NOTIFY`` channel's name (at most 63 bytes)."""
        return f"jobify:{self.schema}.{self.prefix}"[:63]

    @property
    def channel(self) -> str:
        """The channel as a quoted identifier (for ``LISTEN``)."""
        return '"' + self.channel_name + '"'

    def ddl(self, template: str = _DDL) -> list[str]:
        names = {
            suffix: self.table(suffix)
            for suffix in ("jobs", "instances", "claims", "results", "commands", "runs")
        }
        runs_ddl = _RUNS.format(p=self.prefix, **names)
        text = template.format(p=self.prefix, runs_ddl=runs_ddl, **names)
        return [statement for statement in text.split(";") if statement.strip()]


def create_or_check(conn: psycopg.Connection[Any], names: Names, where: str) -> None:
    """Create the schema and tables, or check their version (one transaction)."""
    meta = names.table("meta")
    found = conn.execute(
        "SELECT 1 FROM information_schema.tables WHERE table_schema = %s AND table_name = %s",
        (names.schema, f"{names.prefix}_meta"),
    ).fetchone()
    if found is not None:
        if _version(conn, meta) == "1":
            _migrate_v1(conn, meta, names, where)
        _check(conn, meta, names, where)
        return
    with conn.transaction():
        _lock(conn, names, where)
        conn.execute(f'CREATE SCHEMA IF NOT EXISTS "{names.schema}"')
        conn.execute(f"CREATE TABLE IF NOT EXISTS {meta} (key text PRIMARY KEY, value text)")
        for statement in names.ddl():
            conn.execute(statement)
        conn.execute(
            f"INSERT INTO {meta} (key, value) VALUES ('schema_version', %s) "
            "ON CONFLICT (key) DO NOTHING",
            (str(PG_SCHEMA_VERSION),),
        )
    _check(conn, meta, names, where)


def _lock(conn: psycopg.Connection[Any], names: Names, where: str) -> None:
    conn.execute("SELECT pg_advisory_xact_lock(hashtext(%s))", (f"{where}/{names.jobs}",))


def _version(conn: psycopg.Connection[Any], meta: str) -> str | None:
    row = conn.execute(f"SELECT value FROM {meta} WHERE key = 'schema_version'").fetchone()
    return None if row is None else str(row[0])


def _migrate_v1(conn: psycopg.Connection[Any], meta: str, names: Names, where: str) -> None:
    """Version 1 to 2: the ``paused`` column and the run history (one transaction)."""
    with conn.transaction():
        _lock(conn, names, where)
        if _version(conn, meta) != "1":  # another instance migrated it meanwhile
            return
        for statement in names.ddl(_V2_MIGRATION):
            conn.execute(statement)
        conn.execute(
            f"UPDATE {meta} SET value = %s WHERE key = 'schema_version'", (str(PG_SCHEMA_VERSION),)
        )


def _check(conn: psycopg.Connection[Any], meta: str, names: Names, where: str) -> None:
    version = _version(conn, meta)
    if version != str(PG_SCHEMA_VERSION):
        raise StorageError(
            f"PostgreSQL job store {where}: tables {names.jobs}: schema version {version!r} is "
            f"not supported (this jobify_trio reads version {PG_SCHEMA_VERSION}); use the "
            "jobify_trio release that wrote it, or another schema or table_prefix"
        )
