"""Change detection on the source's rows: a CSV row is fingerprinted by the text its writer reads, whichever
way the CSV reader read its block, a SQL row by its typed values, and only the rows to send are prepared."""

from __future__ import annotations

import io
from datetime import date
from decimal import Decimal

import msgspec
import numpy as np
import pytest

from airflow_provider_optimizely.core.csv_pages import pages_from_csv
from airflow_provider_optimizely.core.incremental import ChangeFilter, change_tracking, close
from airflow_provider_optimizely.core.json_body import encode_json
from airflow_provider_optimizely.core.page import Page, Unreadable, row_of_line
from airflow_provider_optimizely.core.partitions import Partition
from airflow_provider_optimizely.core.source_fingerprints import LineKeys, SourceRows, fingerprinted_columns
from airflow_provider_optimizely.core.sources import pages_from_file
from airflow_provider_optimizely.core.sync import run_sync
from airflow_provider_optimizely.core.sync_state import StateStore, key_hashes
from airflow_provider_optimizely.core.writers.optimove import OptimoveWriter


class FakeOptimove:
    """Optimove taking every record: what each request carried, decoded from its body."""

    def __init__(self) -> None:
        self.calls: list[list[dict]] = []

    def upload_data(self, connection_uuid, records, **options):
        self.calls.append(msgspec.json.decode(encode_json(records)))


HEADER = ["id", "name", "city"]
ROWS = [("1", "Ann", "Oslo"), ("2", "Bo", "Rome"), ("3", 'Cy "C"', "Lima, PE")]


def csv_text(rows, header=HEADER):
    lines = [",".join(header)]
    for row in rows:
        lines.append(
            ",".join(f'"{v}"' if ("," in v or '"' in v) else v for v in (x.replace('"', '""') for x in row))
        )
    return ("\n".join(lines) + "\n").encode()


def csv_pages(rows, header=HEADER):
    return list(pages_from_csv(io.BytesIO(csv_text(rows, header))))


def test_a_row_has_one_fingerprint_whichever_form_its_page_takes():
    [arrow_page] = csv_pages(ROWS)
    assert arrow_page.table is not None  # Arrow read the block
    values_page = Page(header=HEADER, values=ROWS, text_only=True)
    dict_page = Page([dict(zip(HEADER, row, strict=True)) for row in ROWS], text_only=True)
    found = [SourceRows.of(page, HEADER, "id") for page in (arrow_page, values_page, dict_page)]
    for rows in found:
        assert list(rows.texts(np.arange(3))) == ["1", "2", "3"] and rows.all_keyed
        assert rows.hashes(np.arange(3)).tolist() == key_hashes(["1", "2", "3"]).tolist()
        assert rows.prints.tolist() == found[0].prints.tolist()
    assert len(set(found[0].prints.tolist())) == 3


def test_the_fingerprint_follows_the_text_the_columns_and_nothing_else():
    base = SourceRows.of(Page(header=HEADER, values=ROWS, text_only=True), HEADER, "id").prints
    edited = [ROWS[0], ("2", "Bo", "Roma"), ROWS[2]]
    again = SourceRows.of(Page(header=HEADER, values=edited, text_only=True), HEADER, "id").prints
    assert (base == again).tolist() == [True, False, True]
    # A value moved across the separator is another row: "a" + "bc" is not "ab" + "c".
    moved = SourceRows.of(
        Page(header=HEADER, values=[("1", "Ann", "Oslo"), ("1", "An", "nOslo")], text_only=True), HEADER, "id"
    )
    assert moved.prints[0] != moved.prints[1]
    # The same text under other column names is another row too.
    renamed = SourceRows.of(
        Page(header=["id", "nom", "city"], values=ROWS, text_only=True), ["id", "nom", "city"], "id"
    )
    assert not np.intersect1d(renamed.prints, base).size


def test_a_row_without_a_key_or_unreadable_is_left_to_the_writer():
    page = Page(
        [
            {"id": "1", "name": "A", "city": "X"},
            {"id": "  ", "name": "B", "city": "Y"},
            Unreadable("3 fields where the header has 2"),
        ],
        text_only=True,
    )
    rows = SourceRows.of(page, HEADER, "id")
    assert rows.keys == ["1", None, None] and not rows.all_keyed


def test_the_writer_s_columns_make_the_fingerprint():
    assert fingerprinted_columns(HEADER, "id", None) == HEADER
    assert fingerprinted_columns(HEADER, "id", {"city": "town"}) == ["id", "city"]


def sync(store, rows, *, mapping=None, partition=None, header=HEADER, run_key="r1"):
    api = FakeOptimove()
    writer = OptimoveWriter(
        api, connection_uuid="c", identifier_column="id", columns=mapping, allow_partial_records=True
    )
    run = store.sync("s").begin_run(run_key, writer.signature)
    changes = change_tracking(run, writer)
    assert isinstance(changes, ChangeFilter) and changes.key_column == "id"
    report = run_sync(csv_pages(rows, header), writer, changes=changes, partition=partition, max_rejected=10)
    close(run, keep=True, summary={})
    return report, [record for call in api.calls for record in call], run


def test_a_second_run_prepares_and_sends_only_the_rows_whose_text_changed(tmp_path):
    store = StateStore.from_uri(str(tmp_path / "state"))
    first, sent, _ = sync(store, ROWS)
    assert len(sent) == 3 and first.rows_read == 3
    rows = [ROWS[0], ("2", "Bo", "Roma"), ROWS[2], ("4", "Di", "Kyiv")]
    second, sent, run = sync(store, rows, run_key="r2")
    assert sent == [{"id": "2", "name": "Bo", "city": "Roma"}, {"id": "4", "name": "Di", "city": "Kyiv"}]
    assert second.rows_read == 4 and second.rows_sent == 2
    assert run.counts["unchanged"] == 2 and run.counts["changed"] == 1 and run.counts["new"] == 1
    third, sent, _ = sync(store, rows, run_key="r3")
    assert sent == [] and third.rows_read == 4


def test_a_column_the_mapping_leaves_out_is_no_change(tmp_path):
    store = StateStore.from_uri(str(tmp_path / "state"))
    mapping = {"id": "id", "city": "town"}
    sync(store, ROWS, mapping=mapping)
    renamed_only = [(key, f"{name} II", city) for key, name, city in ROWS]
    _, sent, run = sync(store, renamed_only, mapping=mapping, run_key="r2")
    assert sent == [] and run.counts["unchanged"] == 3
    moved = [ROWS[0], ("2", "Bo", "Roma"), ROWS[2]]
    _, sent, _ = sync(store, moved, mapping=mapping, run_key="r3")
    assert sent == [{"id": "2", "town": "Roma"}]


def test_rows_the_writer_rejects_keep_their_source_row_numbers_and_are_tried_again(tmp_path):
    store = StateStore.from_uri(str(tmp_path / "state"))
    rows = [ROWS[0], (" ", "Nobody", "Nowhere"), ROWS[1]]
    first, sent, _ = sync(store, rows)
    assert [r["id"] for r in sent] == ["1", "2"]
    assert [(r.row, r.column) for r in first.rejected_rows] == [(2, "id")]
    changed = [("1", "Ann", "Bergen"), (" ", "Nobody", "Nowhere"), ROWS[1]]
    second, sent, _ = sync(store, changed, run_key="r2")
    assert [r["id"] for r in sent] == ["1"]
    assert [(r.row, r.column) for r in second.rejected_rows] == [(2, "id")]  # still refused, by row number


def test_a_partition_reads_and_sends_only_its_own_keys(tmp_path):
    store = StateStore.from_uri(str(tmp_path / "state"))
    rows = [(str(i), f"N{i}", "X") for i in range(40)]
    partition = Partition(1, 3)
    report, sent, _ = sync(store, rows, partition=partition)
    owned = [key for key, _, _ in rows if partition.owns(key)]
    assert [r["id"] for r in sent] == owned
    assert report.rows_read == len(owned)
    again, sent, _ = sync(store, rows, partition=partition, run_key="r2")
    assert sent == [] and again.rows_read == len(owned)


@pytest.mark.parametrize("dry_run", [True])
def test_a_dry_run_classifies_text_rows_and_sends_nothing(tmp_path, dry_run):
    store = StateStore.from_uri(str(tmp_path / "state"))
    sync(store, ROWS)
    api = FakeOptimove()
    writer = OptimoveWriter(api, connection_uuid="c", identifier_column="id")
    run = store.sync("s").begin_run("r2", writer.signature, dry_run=dry_run)
    rows = [ROWS[0], ("2", "Bo", "Roma"), ROWS[2]]
    run_sync(csv_pages(rows), writer, changes=change_tracking(run, writer))
    assert api.calls == []
    assert run.counts["changed"] == 1 and run.counts["unchanged"] == 2
    assert run.samples["changed"] == ["2"]


TYPED_HEADER = ["id", "score", "joined"]
TYPED = [(1, Decimal("1.50"), date(2024, 1, 2)), (2, None, date(2024, 1, 3)), (3, Decimal("7"), None)]
TYPES = (23, 1700, 1082)  # PostgreSQL's int4, numeric, date


def test_a_sql_row_has_one_fingerprint_with_or_without_a_row_to_refuse_beside_it():
    values_page = Page(header=TYPED_HEADER, values=TYPED, types=TYPES)
    dict_page = Page(
        [*(dict(zip(TYPED_HEADER, row, strict=True)) for row in TYPED), Unreadable("column 'score': NaN")],
        types=TYPES,
    )
    on_values = SourceRows.of(values_page, TYPED_HEADER, "id")
    on_dicts = SourceRows.of(dict_page, TYPED_HEADER, "id")
    assert on_values.keys == ["1", "2", "3"] and on_values.all_keyed
    assert on_dicts.keys == ["1", "2", "3", None]
    assert on_dicts.prints[:3].tolist() == on_values.prints.tolist()


def test_a_sql_value_s_type_is_part_of_its_row_s_fingerprint():
    def prints(rows, types=TYPES):
        return SourceRows.of(Page(header=TYPED_HEADER, values=rows, types=types), TYPED_HEADER, "id").prints

    base = prints(TYPED)
    assert prints([(1, Decimal("1.5"), date(2024, 1, 2))])[0] != base[0]  # another scale, another value
    assert prints([(1, 0, date(2024, 1, 2))])[0] != prints([(1, None, date(2024, 1, 2))])[0]
    # Text that reads as a number ("1.50") encodes as the number's text: what tells them apart is the
    # column's type, so a column whose type changed (text, where it was numeric) makes every row another.
    assert not np.intersect1d(prints(TYPED, (23, 25, 1082)), base).size


def test_an_odd_sql_key_is_left_to_the_writer():
    rows = [
        (1.0, None, None),
        (True, None, None),
        (None, None, None),
        (" ", None, None),
        (Decimal("4"), None, None),
    ]
    found = SourceRows.of(Page(header=TYPED_HEADER, values=rows, types=TYPES), TYPED_HEADER, "id")
    assert found.keys == ["1", None, None, None, "4"] and not found.all_keyed


def test_a_json_lines_row_is_fingerprinted_by_its_line():
    text = b'{"id": 1, "name": "Ann"}\n{"id": "2", "name": "Bo"}\r\nnot json\n{"name": "no id"}\n'
    [page] = pages_from_file(io.BytesIO(text), "jsonl")
    rows = SourceRows.of(page, [], "id")
    assert rows.keys == ["1", "2", None, None] and not rows.all_keyed
    [again] = pages_from_file(
        io.BytesIO(b'{"id": 1, "name": "Ann"}\r\n{"id": "2", "name": "Bob"}\n'), "jsonl"
    )
    prints = SourceRows.of(again, [], "id").prints
    assert prints[0] == rows.prints[0]  # the same line, whatever it ends with
    assert prints[1] != rows.prints[1]


LINES = [
    b'{"id": 1, "name": "Ann", "score": 2.5}',
    b'{"id": "2\\ud800", "name": "lone surrogate: only the standard library reads it"}',
    b'{"id": 0.1000000000000000000001}',
    b'{"id": 1e400}',
    b'{"id": {"nested": [1, 2]}}',
    b'{"id": 1, "id": 2}',
    b'{"name": "no id"}',
    b"[1, 2]",
    b'{"x": NaN, "id": 3}',
    b"not json",
    b"\xff\xfe",
]


@pytest.mark.parametrize("line", LINES)
def test_a_line_s_key_read_alone_is_the_key_of_the_row_read_whole(line):
    row = row_of_line(line)
    assert LineKeys("id").read(line) == (row.get("id") if isinstance(row, dict) else None)


def test_a_json_lines_change_run_reads_whole_only_the_lines_it_sends(tmp_path):
    store = StateStore.from_uri(str(tmp_path / "state"))
    lines = [b'{"id": %d, "name": "n%d"}' % (i, i) for i in range(6)]
    runs = []
    for run_key, text in (("r1", lines), ("r2", [*lines[:5], b'{"id": 5, "name": "changed"}'])):
        api = FakeOptimove()
        writer = OptimoveWriter(api, connection_uuid="c", identifier_column="id")
        run = store.sync("s").begin_run(run_key, writer.signature)
        pages = list(pages_from_file(io.BytesIO(b"\n".join(text) + b"\n"), "jsonl", page_size=3))
        assert [page.rows_read for page in pages] == [False, False]
        run_sync(pages, writer, changes=change_tracking(run, writer))
        close(run, keep=True, summary={})
        sent = [record["id"] for call in api.calls for record in call]
        runs.append((sent, [page.rows_read for page in pages]))
    # The first run sends every line: each read whole at once. In the second, the first page is read whole
    # for its columns, and of the second only the key of each line, and the one line sent whole.
    assert runs == [([0, 1, 2, 3, 4, 5], [True, True]), ([5], [True, False])]
