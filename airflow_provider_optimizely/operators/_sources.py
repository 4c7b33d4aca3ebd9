"""The Airflow side of reading rows: the only place that opens a SQL cursor or a file.

A source is exactly one of:

- ``sql`` on ``sql_conn_id``: any Airflow SQL connection whose hook is a common-sql ``DbApiHook``; read with
  a server-side cursor where the driver has one, one ``fetchmany`` page at a time;
- ``path``: a CSV, TSV or JSON Lines file on local disk or object storage (an ``ObjectStoragePath`` URL such
  as ``s3://bucket/key.csv``, with ``path_conn_id`` for its credentials), read as a stream;
- ``rows``: a list passed in (or an XCom of one).

Files are read as bytes: the core decodes them, so that a byte that is not UTF-8 is one rejected row
named by its number and column, not the end of the run. From PostgreSQL, ``json``/``jsonb`` numbers and
``interval`` values come as the database holds them: the drivers' defaults would make a float of
``0.1000000000000000000001`` and thirty days of a month (``_faithful_postgres_types``).
"""

from __future__ import annotations

import shutil
from collections.abc import Iterator, Mapping, Sequence
from contextlib import contextmanager
from pathlib import Path
from typing import IO, Any

from airflow.sdk import BaseHook, ObjectStoragePath

from airflow_provider_optimizely.core.read_ahead import read_ahead
from airflow_provider_optimizely.core.schema_inference import Column
from airflow_provider_optimizely.core.sources import (
    DEFAULT_FETCH_SIZE,
    Page,
    SourceError,
    file_format_of,
    open_streaming_cursor,
    pages_from_cursor,
    pages_from_file,
    pages_from_records,
    reads_from_any_thread,
)
from airflow_provider_optimizely.core.values import loads_exact


def count_sources(sql: Any, path: Any, rows: Any) -> int:
    return sum(value is not None for value in (sql, path, rows))


@contextmanager
def open_rows(
    *,
    sql: str | None = None,
    sql_conn_id: str | None = None,
    parameters: Mapping[str, Any] | Sequence[Any] | None = None,
    path: str | None = None,
    path_conn_id: str | None = None,
    file_format: str | None = None,
    rows: Sequence[Any] | None = None,
    fetch_size: int = DEFAULT_FETCH_SIZE,
    single_column: str | None = None,
) -> Iterator[tuple[Iterator[Page], int | None]]:
    """The rows of the one source given, and their count when it is known beforehand (a list). A file,
    and a query of a driver whose connections any thread may use, are read ahead (``core.read_ahead``)."""
    if count_sources(sql, path, rows) != 1:
        raise SourceError("give exactly one source: sql (with sql_conn_id), path, or rows")
    if sql is not None:
        with _sql_rows(sql, sql_conn_id, parameters, fetch_size) as sql_rows:
            yield sql_rows, None
    elif path is not None:
        fmt = file_format_of(str(path), file_format)
        with (
            _open_bytes(str(path), path_conn_id) as stream,
            read_ahead(pages_from_file(stream, fmt)) as pages,
        ):
            yield pages, None
    else:
        assert rows is not None
        if isinstance(rows, (str, bytes)) or not hasattr(rows, "__iter__"):
            raise SourceError(f"rows must be a list of mappings, got {type(rows).__name__}")
        total = len(rows) if hasattr(rows, "__len__") else None
        yield pages_from_records(rows, single_column=single_column), total


# Suffixes fsspec reads as compressed (compression="infer"); such a file goes through object storage.
_COMPRESSED_SUFFIXES = (".gz", ".bz2", ".xz", ".lzma", ".zst", ".zip", ".lz4", ".sz", ".snappy")


def _open_bytes(path: str, conn_id: str | None) -> IO[bytes]:
    """A byte stream of the file (decompressed when its name says it is compressed).

    A plain local file is opened with ``open()``: going through object storage would load every
    filesystem Airflow knows (boto3 among them) and add a Python call to each block read.
    """
    if "://" not in path and not path.lower().endswith(_COMPRESSED_SUFFIXES):
        return open(path, "rb")
    storage_path = ObjectStoragePath(path, conn_id=conn_id)
    stream: IO[bytes] = storage_path.open("rb", compression="infer")
    return stream


@contextmanager
def _sql_rows(
    sql: str,
    sql_conn_id: str | None,
    parameters: Mapping[str, Any] | Sequence[Any] | None,
    fetch_size: int,
) -> Iterator[Iterator[Page]]:
    with streaming_cursor(sql_conn_id, fetch_size) as cursor:
        pages = pages_from_cursor(cursor, sql, parameters, fetch_size=fetch_size)
        if not reads_from_any_thread(cursor):
            yield pages
            return
        with read_ahead(pages) as ahead:
            yield ahead


@contextmanager
def streaming_cursor(sql_conn_id: str | None, fetch_size: int) -> Iterator[Any]:
    """A cursor of the SQL connection that streams its result (``core.sources.open_streaming_cursor``)."""
    if not sql_conn_id:
        raise SourceError("sql needs sql_conn_id: the Airflow connection of the database to read")
    connection = sql_hook(sql_conn_id).get_conn()
    try:
        _faithful_postgres_types(connection)
        cursor = open_streaming_cursor(connection, fetch_size=fetch_size)
        try:
            yield cursor
        finally:
            cursor.close()
    finally:
        # Read-only work: end the transaction the cursor opened, whatever the driver's autocommit.
        try:
            connection.rollback()
        finally:
            connection.close()


@contextmanager
def query_tuples(
    sql: str,
    sql_conn_id: str | None,
    parameters: Mapping[str, Any] | Sequence[Any] | None,
    fetch_size: int,
) -> Iterator[tuple[list[str] | None, Iterator[Sequence[Any]]]]:
    """A query's column names (None when it returned no row) and its rows as tuples, a page at a time."""
    with streaming_cursor(sql_conn_id, fetch_size) as cursor:
        if parameters is None:
            cursor.execute(sql)
        else:
            cursor.execute(sql, parameters)
        # A server-side cursor knows its columns only once the first page is fetched.
        page = cursor.fetchmany(fetch_size)
        if cursor.description is None:
            raise SourceError("the SQL returned no result set: it must be a query (SELECT ...)")
        if not page:
            yield None, iter(())
            return
        columns = [str(column[0]) for column in cursor.description]

        def rows(first: Sequence[Any]) -> Iterator[Sequence[Any]]:
            page = first
            while page:
                yield from page
                page = cursor.fetchmany(fetch_size)

        yield columns, rows(page)


@contextmanager
def local_file(path: str | ObjectStoragePath, conn_id: str | None, work_dir: Path) -> Iterator[Path]:
    """The file as a local path: itself when it is on local disk, else a streamed copy in ``work_dir``."""
    storage_path = (
        path if isinstance(path, ObjectStoragePath) else ObjectStoragePath(str(path), conn_id=conn_id)
    )
    if storage_path.protocol in ("file", "local", ""):
        yield Path(storage_path.path)
        return
    copy = work_dir / ("source" + Path(storage_path.name).suffix)
    with storage_path.open("rb") as remote, copy.open("wb") as local:
        shutil.copyfileobj(remote, local, length=1 << 20)
    yield copy


def sql_hook(sql_conn_id: str) -> Any:
    """The ``DbApiHook`` of an Airflow SQL connection, or ``SourceError`` naming the connection."""
    from airflow.providers.common.sql.hooks.sql import DbApiHook

    hook = BaseHook.get_connection(sql_conn_id).get_hook()
    if not isinstance(hook, DbApiHook):
        raise SourceError(f"connection {sql_conn_id!r} is not a SQL connection (its hook is no DbApiHook)")
    return hook


def warehouse_columns(sql_conn_id: str, table: str) -> list[Column]:
    """A warehouse table's columns and their type names, through any Airflow SQL connection.

    SQLAlchemy's inspector is the one way that reads the same on PostgreSQL, SQLite, MySQL, Snowflake...:
    ``information_schema`` is missing on SQLite and ``cursor.description`` type codes differ by driver.
    """
    from sqlalchemy import inspect
    from sqlalchemy.exc import NoSuchTableError

    schema, _, name = table.rpartition(".")
    engine = sql_hook(sql_conn_id).get_sqlalchemy_engine()
    try:
        columns = inspect(engine).get_columns(name, schema=schema or None)
    except NoSuchTableError:
        raise SourceError(f"connection {sql_conn_id!r} has no table {table!r}") from None
    finally:
        engine.dispose()
    if not columns:
        raise SourceError(f"connection {sql_conn_id!r} has no table {table!r} (or it has no columns)")
    return [Column(str(c["name"]), _type_name(c["type"], engine.dialect)) for c in columns]


def _type_name(sql_type: Any, dialect: Any) -> str:
    try:
        return str(sql_type.compile(dialect=dialect))
    except Exception:  # a type the dialect can't render still has a class name worth classifying
        return type(sql_type).__name__


_INTERVAL, _INTERVAL_ARRAY = 1186, 1187


def _faithful_postgres_types(connection: Any) -> None:
    """On a PostgreSQL connection (psycopg 3 or psycopg2), read ``json``/``jsonb`` with every number kept
    (``core.values.loads_exact``) and ``interval`` as PostgreSQL's own text (``1 mon 02:00:00``): the
    drivers' defaults turn a long decimal into a float and a month into thirty days. Other drivers are
    left alone."""
    driver = type(connection).__module__.split(".", 1)[0]
    if driver == "psycopg":
        from psycopg.types.json import set_json_loads
        from psycopg.types.string import TextLoader

        set_json_loads(loads_exact, connection)
        connection.adapters.register_loader("interval", TextLoader)
    elif driver == "psycopg2":
        import psycopg2.extensions
        import psycopg2.extras

        psycopg2.extras.register_default_json(connection, loads=loads_exact)
        psycopg2.extras.register_default_jsonb(connection, loads=loads_exact)
        as_text = psycopg2.extensions.new_type((_INTERVAL,), "INTERVAL_AS_TEXT", lambda value, cursor: value)
        as_texts = psycopg2.extensions.new_array_type((_INTERVAL_ARRAY,), "INTERVAL_AS_TEXT[]", as_text)
        psycopg2.extensions.register_type(as_text, connection)
        psycopg2.extensions.register_type(as_texts, connection)
