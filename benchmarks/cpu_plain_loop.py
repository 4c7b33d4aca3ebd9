"""The data of ``bench_cpu_per_record.py`` and its baseline: a plain streaming loop doing the provider's
requests, with the plainest good change detection (a dict of key -> XXH3 fingerprint of the row read).

The three sources hold the same profiles (``user_id``, ``email``, ``first_name``, ``city``, ``score``,
``signed_up``), at version 0 (the first run) and version 1 (1% of the rows have another ``score``):

- **quoted CSV**: every field quoted; every ``city`` holds a comma, one ``first_name`` in ten a comma
  and doubled quotes;
- **SQL**: a PostgreSQL table (``bigint``, ``text``, ``double precision``, ``date``), read with a named
  (server-side) cursor's ``fetchmany`` of psycopg 3, the driver of the provider's connection;
- **JSON Lines**: one object a line (the key and the score as JSON numbers).

The plain loop reads a source as the plainest good code would (``csv.reader``, ``fetchmany`` of 5000 on
a psycopg named cursor, ``msgspec.json.decode`` a line), fingerprints each row as read with XXH3 (a CSV
row's fields NUL-joined, a JSON line, a SQL row as MessagePack) and skips it when the fingerprint equals
the one kept from the last run; for each other row it builds the API's body (a dict, the number and date
conversions the API needs) and encodes it once with msgspec. The rows left go out as
the provider sends them, one after another over one ``requests.Session``: DCP one POST a profile, Profile
Store one PUT a profile, ODP 500 profiles a POST, Optimove 5000 records a POST under one ``batch_uuid``
(``batch_completed`` on the last). A status other than 2xx stops it. The dict of fingerprints is pickled
to a file at the end of a run and read at the start of the next.
"""

from __future__ import annotations

import csv
import json
import pickle
import uuid
from collections.abc import Callable, Iterator, Sequence
from datetime import date
from pathlib import Path
from typing import Any

HERE = Path(__file__).resolve().parent
DATA_DIR = HERE / ".data"
PG_DSN = "host=127.0.0.1 port=5432 user=postgres dbname=test"
CHANGED_EVERY = 100  # 1% of the rows change between the two versions
CITIES = ("Amsterdam, NL", "Berlin, DE", "Lisbon, PT", "Oslo, NO", "Paris, FR", "Rome, IT")
COLUMNS = ("user_id", "email", "first_name", "city", "score", "signed_up")
SOURCES = ("quoted CSV", "SQL", "JSON Lines")
FETCH = 5000

Row = Sequence[Any]  # user_id, email, first_name, city, score, signed_up


# -- the data ------------------------------------------------------------------------------------------


def profile(i: int, version: int) -> tuple[int, str, str, str, float, date]:
    score = (i * 7919) % 10000 / 100 + (1 if version and i % CHANGED_EVERY == 0 else 0)
    first_name = f'Name{i}, "Jr"' if i % 10 == 0 else f"Name{i}"
    return (i, f"user{i}@example.com", first_name, CITIES[i % len(CITIES)], score, _day(i))


def _day(i: int) -> date:
    return date(2025, 1 + i % 12, 1 + i % 28)


def source_file(kind: str, rows: int, version: int) -> Path:
    """The quoted CSV or JSON Lines file, written once under benchmarks/.data/."""
    suffix = "csv" if kind == "quoted CSV" else "jsonl"
    path = DATA_DIR / f"cpu_{rows}_v{version}.{suffix}"
    if path.exists():
        return path
    DATA_DIR.mkdir(parents=True, exist_ok=True)
    partial = path.with_suffix(".partial")
    with open(partial, "w", newline="", encoding="utf-8") as stream:
        if kind == "quoted CSV":
            writer = csv.writer(stream, quoting=csv.QUOTE_ALL)
            writer.writerow(COLUMNS)
            for i in range(rows):
                row = profile(i, version)
                writer.writerow([*row[:5], row[5].isoformat()])
        else:
            for i in range(rows):
                row = profile(i, version)
                stream.write(
                    json.dumps(dict(zip(COLUMNS, [*row[:5], row[5].isoformat()], strict=True))) + "\n"
                )
    partial.rename(path)
    return path


def source_table(rows: int, version: int) -> str:
    """The PostgreSQL table, made once (kept between runs of the benchmark)."""
    import io

    import psycopg2

    table = f"cpu_bench_{rows}_v{version}"
    with psycopg2.connect(PG_DSN) as db, db.cursor() as cursor:
        cursor.execute("SELECT to_regclass(%s)", (table,))
        if cursor.fetchone()[0] is not None:
            return table
        cursor.execute(
            f"CREATE TABLE {table} (user_id bigint PRIMARY KEY, email text, first_name text, city text, "
            "score double precision, signed_up date)"
        )
        buffer = io.StringIO()
        writer = csv.writer(buffer)
        for i in range(rows):
            writer.writerow(profile(i, version))
        buffer.seek(0)
        cursor.copy_expert(f"COPY {table} FROM STDIN WITH (FORMAT csv)", buffer)
    return table


# -- the plain loop ------------------------------------------------------------------------------------


def read_rows(kind: str, source: str) -> Iterator[tuple[Row, bytes]]:
    """Each row, and the bytes its change is told by: the row as the source holds it (a CSV row's
    fields NUL-joined, a JSON line as written, a SQL row's values as MessagePack)."""
    import msgspec

    if kind == "quoted CSV":
        with open(source, newline="", encoding="utf-8") as stream:
            reader = csv.reader(stream)
            next(reader)
            for fields in reader:
                yield fields, "\x00".join(fields).encode()
    elif kind == "JSON Lines":
        decode = msgspec.json.Decoder().decode
        with open(source, "rb") as stream:
            for line in stream:
                record = decode(line)
                yield [record[column] for column in COLUMNS], line
    else:
        import psycopg  # the driver the provider's PostgreSQL connection uses

        pack = msgspec.msgpack.Encoder().encode
        with psycopg.connect(PG_DSN) as db, db.cursor(name="plain") as cursor:
            cursor.itersize = FETCH
            cursor.execute(f"SELECT * FROM {source} ORDER BY user_id")
            while page := cursor.fetchmany(FETCH):
                for row in page:
                    yield row, pack(row)


def number(value: Any) -> Any:
    return float(value) if type(value) is str else value


def day(value: Any) -> str:
    return value if type(value) is str else value.isoformat()


def dcp_body(row: Row) -> dict[str, Any]:
    email, first_name, city, score, signed_up = row[1:]
    data = {"email": email, "first_name": first_name, "city": city}
    return {"data": {**data, "score": number(score), "signed_up": day(signed_up)}}


def odp_body(row: Row) -> dict[str, Any]:
    email, first_name, city, score, signed_up = row[1:]
    attributes = {"email": email, "first_name": first_name, "city": city}
    attributes.update(score=number(score), signed_up=day(signed_up))
    return {"identifiers": {"customer_id": str(row[0])}, "attributes": attributes}


def profile_store_body(row: Row) -> dict[str, Any]:
    email, first_name, city, score, signed_up = row[1:]
    payload = {"city": city, "score": score, "signed_up": day(signed_up)}
    return {"Info": {"Email": email}, "Name": first_name, "Payload": payload}


def optimove_body(row: Row) -> dict[str, Any]:
    user_id, email, first_name, city, score, signed_up = row
    return {
        "user_id": user_id,
        "email": email,
        "first_name": first_name,
        "city": city,
        "score": score,
        "signed_up": day(signed_up),
    }


BODIES: dict[str, Callable[[Row], dict[str, Any]]] = {
    "DCP": dcp_body,
    "ODP": odp_body,
    "Profile Store": profile_store_body,
    "Optimove": optimove_body,
}


def plain_sync(api: str, kind: str, source: str, state_file: str, target: dict[str, Any]) -> int:
    """One run of the plain loop; returns the records sent. ``target``: URLs and headers."""
    import msgspec
    import requests
    import xxhash

    encode = msgspec.json.Encoder().encode
    fingerprint = xxhash.xxh3_64_intdigest
    session = requests.Session()
    session.headers.update({**target["headers"], "Content-Type": "application/json"})
    try:
        with open(state_file, "rb") as stream:
            last: dict[str, int] = pickle.load(stream)
    except FileNotFoundError:
        last = {}
    kept: dict[str, int] = {}
    body_of = BODIES[api]
    batch_size = {"ODP": 500, "Optimove": 5000}.get(api, 1)
    sent = 0
    batch: list[msgspec.Raw] = []
    held: list[msgspec.Raw] | None = None
    batch_uuid = str(uuid.uuid4())

    def post(url: str, payload: bytes, method: str = "POST") -> None:
        response = session.request(method, url, data=payload, timeout=300)
        if not 200 <= response.status_code < 300:
            raise RuntimeError(f"{api}: {response.status_code} {response.text[:300]}")

    def send_batch(records: list[msgspec.Raw], completed: bool = False) -> None:
        if api == "ODP":
            post(target["url"], encode(records))
        else:
            body = {"data": records, "ttl_seconds": None, "batch_uuid": batch_uuid}
            post(target["url"], encode({**body, "batch_completed": completed}))

    for row, raw in read_rows(kind, source):
        key = str(row[0])
        mark = fingerprint(raw)
        kept[key] = mark
        if last.get(key) == mark:
            continue
        payload = encode(body_of(row))
        sent += 1
        if batch_size == 1:
            method = "PUT" if api == "Profile Store" else "POST"
            post(f"{target['url']}/{key}", payload, method)
            continue
        batch.append(msgspec.Raw(payload))
        if len(batch) == batch_size:
            if api == "Optimove":  # the last request of a batch_uuid goes last, completing it
                if held is not None:
                    send_batch(held)
                held, batch = batch, []
            else:
                send_batch(batch)
                batch = []
    if api == "Optimove":
        if held is not None and batch:
            send_batch(held)
            held = None
        if batch or held:
            send_batch(batch or held or [], completed=True)
    elif batch:
        send_batch(batch)
    with open(state_file, "wb") as stream:
        pickle.dump(kept, stream, protocol=pickle.HIGHEST_PROTOCOL)
    return sent
