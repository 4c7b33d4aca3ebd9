"""The Airflow-side source: PostgreSQL values read through it land as docs/values.md says, for every API.

The tables of docs/values.md ("PostgreSQL types") are read here cell by cell: each row's value is put in
a table of its own (unique names, on the PostgreSQL at 127.0.0.1:5432, database ``test``) and read back
through ``open_rows`` on a ``postgres`` Airflow connection (psycopg 3 under Airflow's PostgreSQL provider),
and through ``core.sources`` on a psycopg2 connection; each API's conversion must give the cell's JSON,
"refused", "no value", or (for NaN and infinity) a rejected row.
"""

from __future__ import annotations

import json
import re
import uuid
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import psycopg2
import pytest

from airflow_provider_optimizely.core.json_body import encode_json
from airflow_provider_optimizely.core.page import Unreadable
from airflow_provider_optimizely.core.sources import pages_from_cursor
from airflow_provider_optimizely.core.validation import dcp_value, odp_value
from airflow_provider_optimizely.core.values import json_value, text_of
from airflow_provider_optimizely.operators._sources import _faithful_postgres_types, open_rows

PG_DSN = "host=127.0.0.1 port=5432 user=postgres dbname=test"
PG_CONN = json.dumps(
    {"conn_type": "postgres", "host": "127.0.0.1", "port": 5432, "login": "postgres", "schema": "test"}
)
DOC = Path(__file__).resolve().parents[3] / "docs" / "values.md"

CONVERSIONS: dict[str, Callable[[Any], Any]] = {
    "as it is: Optimove, Profile Store `Info`/`Payload`, ODP event `data`": json_value,
    "as text: DCP `string`, ODP `string`": lambda v: None if v is None else text_of(v),
    "DCP `long`": lambda v: dcp_value(v, "long"),
    "DCP `double`": lambda v: dcp_value(v, "double"),
    "DCP `bool`": lambda v: dcp_value(v, "bool"),
    "DCP `datetime` `yyyy-mm-dd`": lambda v: dcp_value(v, "datetime", "yyyy-mm-dd"),
    "DCP `datetime` `yyyy-mm-ddThh:mm:ssZ`": lambda v: dcp_value(v, "datetime", "yyyy-mm-ddThh:mm:ssZ"),
    "DCP `datetime` `epoch`": lambda v: dcp_value(v, "datetime", "epoch"),
    "ODP `number`": lambda v: odp_value(v, "number"),
    "ODP `boolean`": lambda v: odp_value(v, "boolean"),
    "ODP `timestamp`": lambda v: odp_value(v, "timestamp"),
}


def documented_rows() -> dict[str, dict[str, str]]:
    """SQL expression -> {column heading: cell} from the tables under "## PostgreSQL types"."""
    section = DOC.read_text(encoding="utf-8").split("## PostgreSQL types", 1)[1].split("\n## ", 1)[0]
    rows: dict[str, dict[str, str]] = {}
    headings: list[str] = []
    for line in section.splitlines():
        if not line.startswith("|") or line.startswith("| ---"):
            continue
        cells = [cell.strip() for cell in line.strip().strip("|").split(" | ")]
        if cells[0] == "PostgreSQL value":
            headings = cells
            continue
        expression = cells[0].strip("`")
        rows.setdefault(expression, {}).update(zip(headings[1:], cells[1:], strict=True))
    return rows


ROWS = documented_rows()


def test_the_document_lists_every_common_type_in_each_table():
    types = " ".join(ROWS)
    for name in ("numeric", "money", "bytea", "jsonb", "json", "[]", "uuid", "interval", "time", "timetz",
                 "timestamp", "timestamptz", "date", "inet", "cidr", "true", "smallint", "bigint", "real",
                 "double precision", "text", "char"):  # fmt: skip
        assert f"::{name}" in types or name in types, name
    assert all(len(cells) == 1 + len(CONVERSIONS) or "row refused" in " ".join(cells.values())
               for cells in ROWS.values())  # fmt: skip


@pytest.fixture(scope="module")
def tables() -> Iterator[dict[str, str]]:
    """A table of one typed column ``v`` and one row for each documented value; dropped afterwards."""
    names = {expression: f"optimizely_values_{uuid.uuid4().hex[:12]}" for expression in ROWS}
    db = psycopg2.connect(PG_DSN)
    db.autocommit = True
    with db.cursor() as cursor:
        for expression, name in names.items():
            cursor.execute(f"CREATE TABLE {name} AS SELECT {expression} AS v")
    yield names
    with db.cursor() as cursor:
        for name in names.values():
            cursor.execute(f"DROP TABLE IF EXISTS {name}")
    db.close()


def read_with_airflow(table: str, monkeypatch: pytest.MonkeyPatch) -> Any:
    monkeypatch.setenv("AIRFLOW_CONN_OPTIMIZELY_VALUES_WAREHOUSE", PG_CONN)
    with open_rows(sql=f"SELECT v FROM {table}", sql_conn_id="optimizely_values_warehouse") as (pages, _):
        [row] = [row for page in pages for row in page.rows]
    return row


def read_with_psycopg2(table: str) -> Any:
    connection = psycopg2.connect(PG_DSN)
    try:
        _faithful_postgres_types(connection)
        [row] = [
            row
            for page in pages_from_cursor(connection.cursor(), f"SELECT v FROM {table}")
            for row in page.rows
        ]
    finally:
        connection.close()
    return row


def cell_of(convert: Callable[[Any], Any], value: Any) -> str:
    try:
        wire = convert(value)
    except ValueError:
        return "refused"
    return "no value" if wire is None else f"`{encode_json(wire).decode()}`"


@pytest.mark.parametrize("driver", ["airflow (psycopg 3)", "psycopg2"])
@pytest.mark.parametrize("expression", list(ROWS))
def test_each_documented_postgresql_value_lands_as_the_document_says(tables, monkeypatch, driver, expression):
    table = tables[expression]
    row = read_with_airflow(table, monkeypatch) if driver.startswith("airflow") else read_with_psycopg2(table)
    documented = ROWS[expression]
    if any("row refused" in cell for cell in documented.values()):
        assert isinstance(row, Unreadable) and row.reason.startswith("column 'v': ")
        assert "is not a finite number: JSON has no NaN or infinity" in row.reason
        return
    assert isinstance(row, dict), row
    value = row["v"]
    for heading, convert in CONVERSIONS.items():
        assert cell_of(convert, value) == documented[heading], (heading, value)


def test_numeric_38_10_keeps_every_digit_through_the_source(tables, monkeypatch):
    """Issue 10 #3: numeric(38,10) became 1.2345678901234569e+27."""
    expression = "'123456789012345678901234567.1234567890'::numeric(38,10)"
    value = read_with_airflow(tables[expression], monkeypatch)["v"]
    body = encode_json(
        {"v": json_value(value), "ltv": dcp_value(value, "double"), "n": odp_value(value, "number")}
    )
    assert body.count(b"123456789012345678901234567.1234567890") == 3


@pytest.mark.parametrize("driver", ["airflow (psycopg 3)", "psycopg2"])
def test_bytea_is_base64_never_the_repr_of_a_memoryview(tables, monkeypatch, driver):
    """Issue 10 #3: bytea came out as garbled text; psycopg2 gives a memoryview."""
    table = tables["'\\x00ff'::bytea"]
    row = read_with_airflow(table, monkeypatch) if driver.startswith("airflow") else read_with_psycopg2(table)
    assert encode_json(json_value(row["v"])) == b'"AP8="'
    assert text_of(row["v"]) == "AP8="
    assert not re.search(r"memory at", text_of(row["v"]))


@pytest.mark.parametrize("suffix", [".csv", ".csv.gz"])
def test_a_file_is_read_as_bytes_so_a_bad_byte_is_one_rejected_row(tmp_path, suffix):
    """Issue 10 #4: a latin-1 byte ended the run with ``UnicodeDecodeError ... position 32``, 0 rows sent."""
    import gzip

    data = b"id,city\n1,Oslo\n2,S\xe3o Paulo\n3," + b"x" * 200_000 + b"\n"
    path = tmp_path / f"people{suffix}"
    path.write_bytes(gzip.compress(data) if suffix.endswith(".gz") else data)
    with open_rows(path=str(path)) as (pages, _):
        rows = [row for page in pages for row in page.rows]
    assert rows[0] == {"id": "1", "city": "Oslo"}
    assert rows[1] == Unreadable("column 'city': the text is not UTF-8")
    assert rows[2] == {"id": "3", "city": "x" * 200_000}
