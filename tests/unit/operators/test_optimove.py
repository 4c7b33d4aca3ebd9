"""The Optimove create-data-connection operator's decisions over a fake hook and fake Variables (the
emulator runs it in tests/integration)."""

from __future__ import annotations

from typing import Any

import pytest
from airflow.sdk.exceptions import AirflowFailException

from airflow_provider_optimizely.operators import optimove
from airflow_provider_optimizely.operators.optimove import (
    OptimoveCreateDataConnectionOperator,
    OptimoveUploadRecordsOperator,
)
from tests.unit.operators.fakes import FakeOptimove, with_hook


class FakeVariables:
    def __init__(self) -> None:
        self.values: dict[str, Any] = {}

    def get(self, key, default=None, deserialize_json=False):
        return self.values.get(key, default)

    def set(self, key, value, description=None, serialize_json=False):
        self.values[key] = value


@pytest.fixture
def variables(monkeypatch):
    store = FakeVariables()
    monkeypatch.setattr(optimove, "Variable", store)
    return store


def create_table(hook, **kwargs):
    op = OptimoveCreateDataConnectionOperator(task_id="create", **{"name": "customers", **kwargs})
    return with_hook(op, hook).execute({})


def test_optimove_remembers_the_uuid_so_a_retry_makes_no_second_connection(variables):
    hook = FakeOptimove()
    first = create_table(hook, primary_key="customer_id")
    again = create_table(hook, primary_key="customer_id")
    assert first == again == "uuid-1"
    assert hook.created == [("customers", "customer_id")]
    [remembered] = variables.values.values()
    assert remembered == {"uuid": "uuid-1", "primary_key": "customer_id", "conn_id": "optimove_default"}


def test_optimove_refuses_a_remembered_connection_with_another_key(variables):
    hook = FakeOptimove()
    create_table(hook, primary_key="customer_id")
    with pytest.raises(AirflowFailException, match="primary_key 'customer_id', not 'email'"):
        create_table(hook, primary_key="email")


def test_optimove_needs_a_primary_key(variables):
    with pytest.raises(AirflowFailException, match="needs a name and a primary_key"):
        create_table(FakeOptimove(), primary_key="")


def test_a_remembered_connection_optimove_no_longer_has_names_the_variable(variables):
    hook = FakeOptimove()
    create_table(hook, primary_key="customer_id")
    hook.gone.add("uuid-1")
    with pytest.raises(
        AirflowFailException, match=r"no longer has data connection 'customers' \(uuid-1\)"
    ) as failed:
        create_table(hook, primary_key="customer_id")
    [key] = variables.values
    assert f"Variable {key}. Delete that Variable" in str(failed.value)
    assert create_table(hook, primary_key="customer_id", recreate_if_missing=True) == "uuid-2"
    assert variables.values[key]["uuid"] == "uuid-2"


def test_an_empty_data_connection_uuid_fails_clearly():
    op = OptimoveUploadRecordsOperator(task_id="u", data_connection_uuid="", identifier_column="id", rows=[])
    with pytest.raises(AirflowFailException, match="data_connection_uuid is empty"):
        op.build_writer(FakeOptimove())
