"""What several integration tests build the same way: the PostgreSQL warehouse, unique names, input files."""

from __future__ import annotations

import csv
import json
import uuid
from collections.abc import Iterable
from pathlib import Path
from typing import Any

PG_DSN = "host=127.0.0.1 port=5432 user=postgres dbname=test"
# The same database as an Airflow connection (for AIRFLOW_CONN_WAREHOUSE).
PG_CONN = json.dumps(
    {"conn_type": "postgres", "host": "127.0.0.1", "port": 5432, "login": "postgres", "schema": "test"}
)


def unique(prefix: str) -> str:
    """A name no other test (or earlier run on the shared database) uses."""
    return f"{prefix}_{uuid.uuid4().hex[:10]}"


def write_csv(path: Path, header: Iterable[str], rows: Iterable[Iterable[Any]]) -> str:
    with open(path, "w", newline="", encoding="utf-8") as stream:
        writer = csv.writer(stream)
        writer.writerow(header)
        writer.writerows(rows)
    return str(path)


def write_json_lines(path: Path, items: Iterable[Any]) -> str:
    with open(path, "w", encoding="utf-8") as stream:
        for item in items:
            stream.write(json.dumps(item) + "\n")
    return str(path)
