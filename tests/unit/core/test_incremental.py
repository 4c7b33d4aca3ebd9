"""Which runs mark each request before it is sent (so that a resumed run counts exactly what it resends)."""

from __future__ import annotations

from types import SimpleNamespace

import pytest

from airflow_provider_optimizely.core.incremental import ChangeFilter, change_tracking
from airflow_provider_optimizely.core.sync_state import StateStore
from tests.unit.core.sync_state import conftest as stores

s3_endpoint = stores.s3_endpoint  # moto's S3 server, the fixture of the sync state's tests


@pytest.mark.parametrize("batch_size", [1, 500])
def test_a_local_store_marks_every_request(tmp_path, batch_size):
    run = StateStore.from_uri(str(tmp_path / "state")).sync("s").begin_run("r", {"target": "t"})
    changes = change_tracking(run, SimpleNamespace(batch_size=batch_size, identifier_column="id"))
    assert isinstance(changes, ChangeFilter) and changes.marks_dispatch


def test_an_object_store_marks_requests_of_many_items_only(s3_endpoint):
    store = StateStore.from_uri(f"s3://{stores.BUCKET}/marks", stores.s3_options(s3_endpoint))
    run = store.sync("s").begin_run("r", {"target": "t"})
    one = change_tracking(run, SimpleNamespace(batch_size=1, identifier_column="id"))
    many = change_tracking(run, SimpleNamespace(batch_size=500, identifier_column="id"))
    assert isinstance(one, ChangeFilter) and isinstance(many, ChangeFilter)
    assert (one.marks_dispatch, many.marks_dispatch) == (False, True)
