"""Records written by Arrow encode as msgspec would write the same dicts, however a batch is cut."""

from __future__ import annotations

import io

import msgspec
import pyarrow as pa
import pytest

from airflow_provider_optimizely.core.csv_pages import pages_from_csv
from airflow_provider_optimizely.core.errors import BadRequestError
from airflow_provider_optimizely.core.json_body import encode_json
from airflow_provider_optimizely.core.json_records import EncodedRecords, records_of
from airflow_provider_optimizely.core.page import Page
from airflow_provider_optimizely.core.sync import Batch, SyncConfigError
from airflow_provider_optimizely.core.writers._invalids import send_dropping_invalids
from airflow_provider_optimizely.core.writers.optimove import OptimoveWriter

ROWS = [
    {"user id": "1", 'say "hi"': "Ann", "city": "Zürich"},
    {"user id": "2", 'say "hi"': "", "city": "Rome"},
    {"user id": "3", 'say "hi"': "Cy", "city": "Oslo"},
]


def records(rows=ROWS) -> EncodedRecords:
    names = list(rows[0])
    table = pa.table({f"c{i}": [row[name] for row in rows] for i, name in enumerate(names)})
    return records_of(table, names)


def test_records_encode_as_the_dicts_do_with_their_names_escaped():
    assert encode_json({"data": records()}) == encode_json({"data": ROWS})


@pytest.mark.parametrize("cut", [slice(0, 0), slice(0, 1), slice(1, 3), slice(2, None), slice(None, -1)])
def test_slices_encode_as_slices_of_the_dicts(cut):
    assert encode_json(records()[cut]) == encode_json(ROWS[cut])


def test_added_slices_and_single_records_encode_as_the_dicts():
    encoded = records()
    assert encode_json(encoded[2:] + encoded[:2]) == encode_json(ROWS[2:] + ROWS[:2])
    assert [msgspec.json.decode(encode_json(record)) for record in encoded] == ROWS
    assert msgspec.json.decode(encode_json(encoded[-1])) == ROWS[-1]
    with pytest.raises(IndexError):
        encoded[3]


def test_a_batch_of_records_is_cut_and_joined_without_becoming_a_list():
    pending = Batch()
    pending.extend(Batch([1, 2, 3], ["1", "2", "3"], records()))
    pending.extend(Batch([4, 5, 6], ["1", "2", "3"], records()))
    first = pending.take(4)
    assert isinstance(first.bodies, EncodedRecords) and isinstance(pending.bodies, EncodedRecords)
    assert (first.rows, pending.rows) == ([1, 2, 3, 4], [5, 6])
    assert encode_json(first.bodies) == encode_json(ROWS + ROWS[:1])
    assert encode_json(pending.bodies) == encode_json(ROWS[1:])


def test_a_batch_mixing_records_and_dicts_becomes_one_list():
    pending = Batch([1], ["9"], [{"user id": "9"}])
    pending.extend(Batch([2, 3, 4], ["1", "2", "3"], records()))
    assert encode_json(pending.bodies) == encode_json([{"user id": "9"}, *ROWS])


def test_a_refused_record_is_dropped_and_the_rest_resent():
    posted: list[list[dict]] = []

    def post(bodies):
        posted.append(msgspec.json.decode(encode_json(bodies)))
        if len(posted) == 1:
            raise BadRequestError(400, "record 1: bad value", api="Optimove", method="POST", path="/x")

    result = send_dropping_invalids(Batch([1, 2, 3], ["1", "2", "3"], records()), post)
    assert posted == [ROWS, [ROWS[0], ROWS[2]]]
    assert (result.succeeded, [(r.row, r.key) for r in result.rejected]) == (2, [(2, "2")])


def test_optimove_writes_a_plain_csv_page_as_records_that_encode_as_its_rows():
    text = "uid,first name,city\n1,Ann,Zürich\n2,Bob,\n"
    writer = OptimoveWriter(None, connection_uuid="dc", identifier_column="uid", primary_key="user_id")
    [page] = pages_from_csv(io.BytesIO(text.encode()))
    ready, rejected = writer.prepare_page(7, page)
    assert isinstance(ready.bodies, EncodedRecords)
    assert (ready.rows, ready.keys, rejected) == ([7, 8], ["1", "2"], [])
    assert encode_json(ready.bodies) == encode_json(
        [
            {"user_id": "1", "first name": "Ann", "city": "Zürich"},
            {"user_id": "2", "first name": "Bob", "city": ""},
        ]
    )


def arrow_and_dict_pages(text: str):
    """The same CSV page as Arrow reads it and as dicts (what the row-by-row path takes)."""
    [page] = pages_from_csv(io.BytesIO(text.encode()))
    assert page.table is not None
    return page, Page([dict(row) for row in page.rows])  # type: ignore[arg-type]


@pytest.mark.parametrize(
    ("mapping", "primary_key"),
    [
        ({"uid": "user_id", "first": "first_name", "city": "town"}, None),
        ({"first": "first_name", "city": "town"}, "user_id"),
        (["uid", "first", "city"], None),
    ],
    ids=["key mapped", "key not mapped", "list of columns"],
)
def test_optimove_writes_a_mapped_arrow_page_as_the_row_by_row_path_does(mapping, primary_key):
    arrow_page, dict_page = arrow_and_dict_pages("uid,first,city\n1,Ann,Zürich\n2,Bob,\n")

    def prepared(page):
        writer = OptimoveWriter(
            None, connection_uuid="dc", identifier_column="uid", primary_key=primary_key, columns=mapping
        )
        return writer.prepare_page(1, page)

    (fast, fast_rejected), (slow, slow_rejected) = prepared(arrow_page), prepared(dict_page)
    assert isinstance(fast.bodies, EncodedRecords) and not isinstance(slow.bodies, EncodedRecords)
    assert (fast.rows, fast.keys, fast_rejected) == (slow.rows, slow.keys, slow_rejected)
    assert encode_json(fast.bodies) == encode_json(slow.bodies)


def test_optimove_refuses_an_arrow_page_whose_mapping_leaves_columns_out():
    arrow_page, _ = arrow_and_dict_pages("uid,first,secret\n1,Ann,s\n")
    writer = OptimoveWriter(None, connection_uuid="dc", identifier_column="uid", columns=["uid", "first"])
    with pytest.raises(SyncConfigError, match="leaves out column\\(s\\) 'secret'"):
        writer.prepare_page(1, arrow_page)


def test_optimove_sends_partial_arrow_records_when_asked_and_warns_once():
    arrow_page, _ = arrow_and_dict_pages("uid,first,secret\n1,Ann,s\n2,Bob,t\n")
    warnings: list[str] = []

    class Log:
        def warning(self, message, *args):
            warnings.append(message % args)

    writer = OptimoveWriter(
        None,
        connection_uuid="dc",
        identifier_column="uid",
        columns=["uid", "first"],
        allow_partial_records=True,
        logger=Log(),  # type: ignore[arg-type]
    )
    ready, _ = writer.prepare_page(1, arrow_page)
    writer.prepare_page(3, arrow_page)
    assert encode_json(ready.bodies) == encode_json(
        [{"uid": "1", "first": "Ann"}, {"uid": "2", "first": "Bob"}]
    )
    assert sum("without column(s) secret" in warning for warning in warnings) == 1


@pytest.mark.parametrize("delimiter", [",", "\t"])
def test_records_of_a_page_arrow_read_are_its_rows_whatever_the_text_holds(delimiter):
    """Arrow reads quoted CSV too: the records it writes a column at a time escape what JSON must escape
    (quotes, backslashes, line breaks, tabs, control characters), told by the reader or looked for."""
    import random

    cells = ["a", "é", "", "x y", '"q, q"', '"a\nb"', '"say ""hi"""', "\\", "\x01", '"\t"', '"a\r\nb"', "€"]
    rng = random.Random(3)
    read_by_arrow = 0
    for _ in range(120):
        lines = []
        for i in range(rng.randint(1, 12)):
            row = [str(i), *(rng.choice(cells) for _ in range(2))]
            lines.append(delimiter.join(row) + "\n")
        text = delimiter.join(["id", "name", "note"]) + "\n" + "".join(lines)
        for page in pages_from_csv(io.BytesIO(text.encode()), delimiter=delimiter):
            if page.table is None:
                continue
            read_by_arrow += 1
            header = page.header
            assert header is not None and page.values is not None
            records = records_of(page.table, header)
            rows = [dict(zip(header, row, strict=True)) for row in page.values]
            assert msgspec.json.decode(encode_json(records)) == rows
    assert read_by_arrow > 80
