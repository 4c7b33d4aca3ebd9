"""State stores for the tests: a local folder, and an ``s3://`` bucket on moto's server through s3fs."""

from __future__ import annotations

import uuid
from collections.abc import Callable, Iterator
from typing import Any

import boto3
import pytest

from airflow_provider_optimizely.core.sync_state import StateStore

BUCKET = "sync-state"
CREDENTIALS = {"key": "testing", "secret": "testing"}
REGION = "us-east-1"


@pytest.fixture(scope="session")
def s3_endpoint() -> Iterator[str]:
    from moto.server import ThreadedMotoServer

    server = ThreadedMotoServer(ip_address="127.0.0.1", port=0, verbose=False)
    server.start()
    try:
        host, port = server.get_host_and_port()
        endpoint = f"http://{host}:{port}"
        client = boto3.client(
            "s3",
            endpoint_url=endpoint,
            region_name=REGION,
            aws_access_key_id=CREDENTIALS["key"],
            aws_secret_access_key=CREDENTIALS["secret"],
        )
        client.create_bucket(Bucket=BUCKET)
        yield endpoint
    finally:
        server.stop()


def s3_options(endpoint: str) -> dict[str, Any]:
    # A filesystem object of its own each time (no fsspec instance cache): as another worker would have.
    return {
        **CREDENTIALS,
        "client_kwargs": {"endpoint_url": endpoint, "region_name": REGION},
        "skip_instance_cache": True,
    }


@pytest.fixture(params=["local", "s3"])
def new_store(request: pytest.FixtureRequest, tmp_path: Any) -> Callable[[], StateStore]:
    """Makes a new ``StateStore`` object over the same store on each call (a fresh worker's view)."""
    if request.param == "local":
        return lambda: StateStore.from_uri(str(tmp_path / "state"))
    endpoint = request.getfixturevalue("s3_endpoint")
    uri = f"s3://{BUCKET}/{uuid.uuid4().hex}"
    return lambda: StateStore.from_uri(uri, s3_options(endpoint))


@pytest.fixture
def local_store(tmp_path: Any) -> Callable[[], StateStore]:
    return lambda: StateStore.from_uri(str(tmp_path / "state"))


def all_files(store: StateStore) -> list[str]:
    """Every file under the store's root (for tests that nothing, or nothing more, was written)."""
    storage = store.storage
    storage.fs.invalidate_cache()
    try:
        found = storage.fs.find(storage.root)
    except FileNotFoundError:
        return []
    return sorted(path for path in found if not path.endswith("/"))
