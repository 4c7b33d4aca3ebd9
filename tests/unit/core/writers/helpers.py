"""What the writer tests share: pages of rows, batches of items, an ODP-style 400."""

from __future__ import annotations

from airflow_provider_optimizely.core.errors import BadRequestError
from airflow_provider_optimizely.core.sources import Page
from airflow_provider_optimizely.core.sync import Batch


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
