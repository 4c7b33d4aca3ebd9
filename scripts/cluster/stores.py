"""The services the cluster uses but does not run: PostgreSQL (its metadata database) and Redis (Celery's
broker and result backend). Both already run on every machine of the project."""

from __future__ import annotations

import re
from typing import Any

_DATABASE_NAME = re.compile(r"^[a-z_][a-z0-9_]*$")


class StoreUnavailable(RuntimeError):
    """PostgreSQL or Redis cannot be reached: the cluster cannot start."""


def _admin_connection(postgres_url: str) -> Any:
    import psycopg2

    try:
        connection = psycopg2.connect(f"{postgres_url.rstrip('/')}/postgres", connect_timeout=5)
    except psycopg2.OperationalError as exc:
        raise StoreUnavailable(f"PostgreSQL at {postgres_url} is not reachable: {exc}".strip()) from None
    connection.autocommit = True  # CREATE/DROP DATABASE cannot run in a transaction
    return connection


def _checked(name: str) -> str:
    if not _DATABASE_NAME.match(name):
        raise ValueError(f"not a plain database name: {name!r}")
    return name


def database_exists(postgres_url: str, name: str) -> bool:
    connection = _admin_connection(postgres_url)
    try:
        with connection.cursor() as cursor:
            cursor.execute("SELECT 1 FROM pg_database WHERE datname = %s", (name,))
            return cursor.fetchone() is not None
    finally:
        connection.close()


def create_database(postgres_url: str, name: str, *, fresh: bool) -> bool:
    """Create the database unless it exists (drop it first when ``fresh``); True when it was created."""
    connection = _admin_connection(postgres_url)
    try:
        with connection.cursor() as cursor:
            if fresh:
                cursor.execute(f"DROP DATABASE IF EXISTS {_checked(name)} WITH (FORCE)")
            cursor.execute("SELECT 1 FROM pg_database WHERE datname = %s", (name,))
            if cursor.fetchone() is not None:
                return False
            cursor.execute(f"CREATE DATABASE {_checked(name)}")
            return True
    finally:
        connection.close()


def drop_database(postgres_url: str, name: str) -> None:
    connection = _admin_connection(postgres_url)
    try:
        with connection.cursor() as cursor:
            cursor.execute(f"DROP DATABASE IF EXISTS {_checked(name)} WITH (FORCE)")
    finally:
        connection.close()


def alembic_revision(postgres_url: str, name: str) -> str | None:
    """The migration the database is at (Airflow's ``alembic_version``), or None (absent, empty, new)."""
    import psycopg2

    try:
        connection = psycopg2.connect(f"{postgres_url.rstrip('/')}/{_checked(name)}", connect_timeout=5)
    except psycopg2.OperationalError:
        return None
    try:
        with connection.cursor() as cursor:
            cursor.execute("SELECT to_regclass('alembic_version') IS NOT NULL")
            row = cursor.fetchone()
            if not row or not row[0]:
                return None
            cursor.execute("SELECT version_num FROM alembic_version")
            row = cursor.fetchone()
            return str(row[0]) if row else None
    finally:
        connection.close()


def redis_client(url: str) -> Any:
    import redis

    return redis.Redis.from_url(url, socket_timeout=5, socket_connect_timeout=5)


def check_redis(url: str) -> None:
    import redis

    try:
        redis_client(url).ping()
    except redis.RedisError as exc:
        raise StoreUnavailable(f"Redis at {url} is not reachable: {exc}") from None


def clear_redis_prefix(url: str, prefix: str) -> int:
    """Delete this cluster's keys (queued messages of an earlier run among them); return how many."""
    client = redis_client(url)
    deleted = 0
    batch: list[bytes] = []
    for key in client.scan_iter(match=f"{_glob_escape(prefix)}*", count=500):
        batch.append(key)
        if len(batch) >= 500:
            deleted += client.delete(*batch)
            batch = []
    if batch:
        deleted += client.delete(*batch)
    return deleted


def _glob_escape(text: str) -> str:
    return re.sub(r"([*?\[\]\\])", r"\\\1", text)
