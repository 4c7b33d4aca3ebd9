"""What the writer tests share: pages of rows, batches of items, an ODP-style 400, and the check that a
page made at once is what row by row makes."""

from __future__ import annotations

from airflow_provider_optimizely.core.errors import BadRequestError
from airflow_provider_optimizely.core.json_body import encode_json
from airflow_provider_optimizely.core.sources import Page
from airflow_provider_optimizely.core.sync import Batch, RowWriter


def numbered(rows, text_only=False):
    return [Page(rows, text_only=text_only)]


def batch_of(*items):
    batch = Batch()
    for item in items:
        batch.append(item)
    return batch


def invalid(indexes_reasons, kind="event"):
    return BadRequestError(
        400,
        "invalid request",
        invalids=[{kind: i, "message": reason} for i, reason in indexes_reasons],
    )


def assert_page_as_row_by_row(writer, page, page_again):
    """``writer.prepare_page`` on ``page`` gives what ``prepare`` a row gives on ``page_again`` (the same
    rows: a page is consumed): the same rows, keys and rejections, and the same bytes on the wire, so
    that a fingerprint never depends on the way a page took."""
    ready, rejected = writer.prepare_page(3, page)
    one_by_one, rejected_one_by_one = RowWriter.prepare_page(writer, 3, page_again)
    assert (ready.rows, ready.keys, rejected) == (one_by_one.rows, one_by_one.keys, rejected_one_by_one)
    assert list(map(encode_json, ready.bodies)) == list(map(encode_json, one_by_one.bodies))
    return ready
