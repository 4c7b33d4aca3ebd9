"""The table-setup operators' decisions, over fake hooks (the network is faked; the emulator runs in
tests/integration/test_tables.py)."""

from __future__ import annotations

from typing import Any

import pytest

from airflow_provider_optimizely.core.errors import BadRequestError, ConflictError
from airflow_provider_optimizely.core.rest import RequestStats
from airflow_provider_optimizely.hooks.dcp import OptimizelyDcpHook
from airflow_provider_optimizely.hooks.odp import OptimizelyOdpHook
from airflow_provider_optimizely.hooks.optimove import OptimoveHook
from airflow_provider_optimizely.models.dcp import DcpAttribute, DcpService, DcpTable
from airflow_provider_optimizely.models.odp import SchemaField, SchemaObject
from airflow_provider_optimizely.models.optimove import DataConnection
from airflow_provider_optimizely.operators import tables
from airflow_provider_optimizely.operators.tables import (
    OptimizelyCreateTableOperator,
    OptimizelyRegisterAttributesOperator,
    TableSetupError,
    optimove_memory_key,
)


class FakeClient:
    def __init__(self) -> None:
        self.stats = RequestStats()


class FakeDcp(OptimizelyDcpHook):
    """DCP in memory; ``pages_read`` counts the list pages asked for (100 tables a page)."""

    def __init__(self, *, extras: dict[str, Any] | None = None) -> None:
        super().__init__("fake")
        self._extras = extras or {}
        self.__dict__["_client"] = FakeClient()
        self.services: list[DcpService] = []
        self.tables: dict[int, DcpTable] = {}
        self.attributes: list[DcpAttribute] = []
        self.next_id = 100
        self.pages_read = 0
        self.duplicate_next_create = False
        self.service_conflict = False

    @property
    def extras(self) -> dict[str, Any]:
        return self._extras

    def _new_id(self) -> int:
        self.next_id += 1
        return self.next_id

    def list_services(self):
        yield from list(self.services)

    def create_service(self, name):
        if self.service_conflict:
            self.services.append(DcpService(id=self._new_id(), name="made by the lost attempt"))
            raise ConflictError(409, "one service per account", method="POST", path="dcp_services")
        service = DcpService(id=self._new_id(), name=name)
        self.services.append(service)
        return service

    def list_tables(self, service_id=None):
        rows = [t for t in self.tables.values() if t.dcp_service_id == service_id]
        for start in range(0, max(len(rows), 1), 100):
            self.pages_read += 1
            yield from rows[start : start + 100]

    def create_table(
        self, name, keyfield_locator_type="uid", keyfield_locator_name=None, description=None, service_id=None
    ):
        copies = 2 if self.duplicate_next_create else 1
        made = []
        for _ in range(copies):
            table = DcpTable(
                id=self._new_id(),
                name=name,
                dcp_service_id=service_id,
                keyfield_locator_type=keyfield_locator_type,
                keyfield_locator_name=keyfield_locator_name or "",
            )
            self.tables[table.id] = table
            made.append(table)
        if self.duplicate_next_create:
            self.client.stats.add(retries=1, maybe_applied_twice=1)
            self.duplicate_next_create = False
        return made[-1]  # the answer of the retried request describes the second table

    def delete_table(self, table_id):
        self.tables[table_id] = self.tables[table_id].model_copy(update={"archived": True})

    def list_attributes(self, table_id):
        yield from [a for a in self.attributes if a.dcp_datasource_id == table_id]

    def create_attribute(self, table_id, name, datatype, description=None, format=None):
        live = {a.name for a in self.attributes if a.dcp_datasource_id == table_id and not a.archived}
        if name in live:
            raise ConflictError(409, "exists", method="POST", path="attributes")
        attribute = DcpAttribute(
            id=self._new_id(), name=name, datatype=datatype, format=format, dcp_datasource_id=table_id
        )
        self.attributes.append(attribute)
        return attribute


def with_hook(operator, hook):
    operator.__dict__["hook"] = hook
    return operator


def create_table(hook, **kwargs):
    op = OptimizelyCreateTableOperator(task_id="create_table", **{"table_name": "customers", **kwargs})
    return with_hook(op, hook).execute({})


# -- construction -------------------------------------------------------------------------------------


def test_constructing_reads_no_connection_and_templates_what_authors_template():
    create = OptimizelyCreateTableOperator(task_id="t", table_name="x", conn_id="no_such_connection")
    register = OptimizelyRegisterAttributesOperator(
        task_id="r", table_id="{{ ti.xcom_pull('t') }}", conn_id="no_such_connection", attributes=[]
    )
    assert "hook" not in create.__dict__ and "hook" not in register.__dict__
    assert {"table_name", "keyfield_locator_name", "primary_key", "conn_id"} <= set(create.template_fields)
    assert {"table_id", "attributes", "source_table", "overrides", "exclude"} <= set(register.template_fields)


@pytest.mark.parametrize(
    "kwargs",
    [{}, {"attributes": [], "source_table": "t", "sql_conn_id": "w"}, {"source_table": "t"}],
)
def test_register_needs_exactly_one_source_of_attributes(kwargs):
    with pytest.raises(ValueError, match=r"attributes or source_table|needs sql_conn_id"):
        OptimizelyRegisterAttributesOperator(task_id="r", table_id=1, **kwargs)


# -- DCP create-table ---------------------------------------------------------------------------------


def test_dcp_creates_the_service_when_the_account_has_none_then_the_table_once():
    hook = FakeDcp()
    first = create_table(hook, service_name="Our profiles")
    assert [s.name for s in hook.services] == ["Our profiles"]
    again = create_table(hook, service_name="Our profiles")
    assert first == again
    assert [t.name for t in hook.tables.values()] == ["customers"]


def test_dcp_uses_the_configured_service():
    hook = FakeDcp(extras={"dcp_service_id": "7"})
    table_id = create_table(hook)
    assert hook.tables[table_id].dcp_service_id == 7
    assert hook.services == []


def test_dcp_finds_an_existing_table_on_a_later_page():
    hook = FakeDcp(extras={"dcp_service_id": 1})
    for n in range(250):
        hook.tables[n] = DcpTable(id=n, name=f"t{n}", dcp_service_id=1, keyfield_locator_type="uid")
    assert create_table(hook, table_name="t230") == 230
    assert hook.pages_read == 3
    assert len(hook.tables) == 250


def test_dcp_skips_an_archived_table_of_the_same_name():
    hook = FakeDcp(extras={"dcp_service_id": 1})
    hook.tables[5] = DcpTable(id=5, name="customers", dcp_service_id=1, archived=True)
    table_id = create_table(hook)
    assert table_id != 5 and not hook.tables[table_id].archived


def test_dcp_service_conflict_means_an_earlier_attempt_made_it():
    hook = FakeDcp()
    hook.service_conflict = True
    table_id = create_table(hook)
    assert hook.tables[table_id].dcp_service_id == hook.services[0].id


def test_dcp_create_applied_twice_keeps_the_oldest_and_archives_the_other():
    hook = FakeDcp(extras={"dcp_service_id": 1})
    hook.duplicate_next_create = True
    table_id = create_table(hook)
    live = [t.id for t in hook.tables.values() if not t.archived]
    archived = [t.id for t in hook.tables.values() if t.archived]
    assert live == [table_id] and archived == [table_id + 1]


def test_dcp_existing_table_keyed_otherwise_is_an_error():
    hook = FakeDcp(extras={"dcp_service_id": 1})
    hook.tables[3] = DcpTable(
        id=3, name="customers", dcp_service_id=1, keyfield_locator_type="cookie", keyfield_locator_name="cid"
    )
    with pytest.raises(TableSetupError, match="keyed by cookie 'cid'"):
        create_table(hook)
    assert create_table(hook, keyfield_locator_type="cookie", keyfield_locator_name="cid") == 3


# -- ODP create-table ---------------------------------------------------------------------------------


class FakeOdp(OptimizelyOdpHook):
    def __init__(self) -> None:
        super().__init__("fake")
        self.__dict__["_client"] = FakeClient()
        self.objects: dict[str, SchemaObject] = {}
        self.lost_answer = False
        self.field_calls = 0

    def get_schema_object(self, object_type):
        return self.objects.get(object_type)

    def create_schema_object(self, object_type, display_name, description=None):
        if object_type in self.objects:
            raise BadRequestError(400, "exists", method="POST", path="schema/objects")
        self.objects[object_type] = SchemaObject(name=object_type, display_name=display_name)
        if self.lost_answer:  # the first attempt was applied; the retry is refused as a duplicate
            raise BadRequestError(400, "exists", method="POST", path="schema/objects")
        return self.objects[object_type]

    def create_schema_field(self, object_type, name, display_name, type, description=None):
        self.field_calls += 1
        fields = self.objects[object_type].fields
        if any(f.name == name for f in fields):
            raise BadRequestError(400, "exists", method="POST", path="fields")
        field = SchemaField(name=name, display_name=display_name, type=type)
        fields.append(field)
        return field


def test_odp_object_type_is_created_once_with_a_display_name():
    hook = FakeOdp()
    assert create_table(hook, table_name="loyalty_cards") == "loyalty_cards"
    assert hook.objects["loyalty_cards"].display_name == "Loyalty Cards"
    assert create_table(hook, table_name="loyalty_cards") == "loyalty_cards"


def test_odp_duplicate_refusal_after_a_lost_answer_is_success():
    hook = FakeOdp()
    hook.lost_answer = True
    assert create_table(hook, table_name="cards", display_name="Cards") == "cards"


# -- Optimove create-table ----------------------------------------------------------------------------


class FakeOptimove(OptimoveHook):
    def __init__(self) -> None:
        super().__init__("fake")
        self.__dict__["_client"] = FakeClient()
        self.created: list[tuple[str, str]] = []

    def create_connection(self, name, primary_key, description=""):
        self.created.append((name, primary_key))
        return DataConnection(data_connection_uuid=f"uuid-{len(self.created)}")


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
    monkeypatch.setattr(tables, "Variable", store)
    return store


def test_optimove_remembers_the_uuid_so_a_retry_makes_no_second_connection(variables):
    hook = FakeOptimove()
    first = create_table(hook, conn_id="optimove_default", primary_key="customer_id")
    again = create_table(hook, conn_id="optimove_default", primary_key="customer_id")
    assert first == again == "uuid-1"
    assert hook.created == [("customers", "customer_id")]
    assert variables.values[optimove_memory_key("optimove_default", "customers")]["uuid"] == "uuid-1"


def test_optimove_refuses_a_remembered_connection_with_another_key(variables):
    hook = FakeOptimove()
    create_table(hook, conn_id="optimove_default", primary_key="customer_id")
    with pytest.raises(TableSetupError, match="primary_key 'customer_id', not 'email'"):
        create_table(hook, conn_id="optimove_default", primary_key="email")


def test_optimove_needs_a_primary_key(variables):
    with pytest.raises(TableSetupError, match="needs primary_key"):
        create_table(FakeOptimove(), conn_id="optimove_default")


# -- register-attributes ------------------------------------------------------------------------------


def register(hook, table_id, **kwargs):
    op = OptimizelyRegisterAttributesOperator(task_id="register", table_id=table_id, **kwargs)
    return with_hook(op, hook).execute({})


def test_dcp_registers_only_the_missing_attributes():
    hook = FakeDcp()
    hook.attributes.append(DcpAttribute(id=1, name="plan", datatype="string", dcp_datasource_id=9))
    hook.attributes.append(
        DcpAttribute(id=2, name="visits", datatype="double", dcp_datasource_id=9, archived=True)
    )
    result = register(
        hook,
        "9",
        attributes=[
            {"name": "plan", "datatype": "string"},
            {"name": "visits", "datatype": "long"},
            {"name": "since", "datatype": "datetime", "format": "yyyy-mm-dd"},
        ],
    )
    assert [a["name"] for a in result["created"]] == ["visits", "since"]
    assert result["existing"] == [{"name": "plan", "datatype": "string"}]
    assert result["created"][1] == {"name": "since", "datatype": "datetime", "format": "yyyy-mm-dd"}
    again = register(hook, 9, attributes=[{"name": "since", "datatype": "datetime", "format": "yyyy-mm-dd"}])
    assert again["created"] == [] and len(again["existing"]) == 1


def test_dcp_another_datatype_fails_before_anything_is_created():
    hook = FakeDcp()
    hook.attributes.append(DcpAttribute(id=1, name="visits", datatype="double", dcp_datasource_id=9))
    with pytest.raises(TableSetupError, match=r"visits: registered as double, asked long"):
        register(
            hook,
            9,
            attributes=[{"name": "new", "datatype": "string"}, {"name": "visits", "datatype": "long"}],
        )
    assert [a.name for a in hook.attributes] == ["visits"]


def test_dcp_another_datetime_format_is_a_conflict_too():
    hook = FakeDcp()
    hook.attributes.append(
        DcpAttribute(id=1, name="d", datatype="datetime", format="epoch", dcp_datasource_id=9)
    )
    with pytest.raises(TableSetupError, match=r"datetime \(epoch\)"):
        register(hook, 9, attributes=[{"name": "d", "datatype": "datetime", "format": "yyyy-mm-dd"}])


def test_dcp_conflict_answer_from_a_lost_create_counts_as_existing():
    hook = FakeDcp()
    real_create = hook.create_attribute

    def create_then_lose_answer(table_id, name, datatype, description=None, format=None):
        real_create(table_id, name, datatype, description, format)
        return real_create(table_id, name, datatype, description, format)  # the retry: 409

    hook.create_attribute = create_then_lose_answer  # type: ignore[method-assign]
    result = register(hook, 9, attributes=[{"name": "plan", "datatype": "string"}])
    assert result["created"] == [] and result["existing"] == [{"name": "plan", "datatype": "string"}]
    assert len(hook.attributes) == 1


def test_dcp_table_id_must_be_a_number():
    with pytest.raises(TableSetupError, match="is a number"):
        register(FakeDcp(), "customers", attributes=[])


def test_bad_attribute_lists_fail_the_task_without_retry():
    with pytest.raises(TableSetupError, match="DCP datatype must be one of"):
        register(FakeDcp(), 9, attributes=[{"name": "a", "datatype": "integer"}])


def test_odp_registers_fields_and_treats_a_duplicate_refusal_as_existing():
    hook = FakeOdp()
    hook.objects["cards"] = SchemaObject(name="cards", fields=[SchemaField(name="tier", type="string")])
    result = register(
        hook,
        "cards",
        conn_id="optimizely_odp_default",
        attributes=[
            {"name": "tier", "type": "string"},
            {"name": "points", "type": "number", "display_name": "Pts"},
        ],
    )
    assert result["created"] == [{"name": "points", "datatype": "number"}]
    assert [f.display_name for f in hook.objects["cards"].fields] == [None, "Pts"]


def test_odp_unknown_object_type_says_to_create_it_first():
    with pytest.raises(TableSetupError, match="create it first"):
        register(FakeOdp(), "nope", attributes=[{"name": "a", "type": "string"}])
