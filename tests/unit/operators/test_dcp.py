"""The DCP operators' decisions over a fake hook (the emulator runs them in tests/integration)."""

from __future__ import annotations

import pytest
from airflow.sdk.exceptions import AirflowFailException

from airflow_provider_optimizely.models.dcp import DcpAttribute, DcpTable
from airflow_provider_optimizely.operators.dcp import (
    OptimizelyDcpCreateTableOperator,
    OptimizelyDcpRegisterAttributesOperator,
    OptimizelyDcpUpsertProfilesOperator,
)
from tests.unit.operators.fakes import FakeDcp, with_hook


def create_table(hook, **kwargs):
    op = OptimizelyDcpCreateTableOperator(task_id="create_table", **{"table_name": "customers", **kwargs})
    return with_hook(op, hook).execute({})


def test_constructing_reads_no_connection_and_templates_what_authors_template():
    create = OptimizelyDcpCreateTableOperator(task_id="t", table_name="x", conn_id="no_such_connection")
    register = OptimizelyDcpRegisterAttributesOperator(
        task_id="r", table_id="{{ ti.xcom_pull('t') }}", conn_id="no_such_connection", attributes=[]
    )
    assert "hook" not in create.__dict__ and "hook" not in register.__dict__
    assert {"table_name", "keyfield_locator_name", "conn_id"} <= set(create.template_fields)
    assert {"table_id", "attributes", "source_table", "overrides", "exclude"} <= set(register.template_fields)
    assert create.conn_id == "no_such_connection"
    assert OptimizelyDcpCreateTableOperator(task_id="d", table_name="x").conn_id == "optimizely_default"


@pytest.mark.parametrize(
    "kwargs",
    [{}, {"attributes": [], "source_table": "t", "sql_conn_id": "w"}, {"source_table": "t"}],
)
def test_register_needs_exactly_one_source_of_attributes(kwargs):
    with pytest.raises(ValueError, match=r"attributes or source_table|needs sql_conn_id"):
        OptimizelyDcpRegisterAttributesOperator(task_id="r", table_id=1, **kwargs)


def test_the_upsert_writer_reads_a_templated_table_id_as_a_number():
    hook = FakeDcp()
    op = OptimizelyDcpUpsertProfilesOperator(task_id="t", table_id="12", identifier_column="id", rows=[])
    assert op.build_writer(hook).table_id == 12
    bad = OptimizelyDcpUpsertProfilesOperator(
        task_id="t", table_id="customers", identifier_column="id", rows=[]
    )
    with pytest.raises(AirflowFailException, match="a DCP table id is a number"):
        bad.build_writer(hook)


def test_the_upsert_channel_settings_are_checked_when_the_dag_is_parsed_unless_templated():
    kwargs = {"task_id": "t", "table_id": 1, "identifier_column": "id", "rows": []}
    with pytest.raises(ValueError, match="method is one of auto, rest, bulk"):
        OptimizelyDcpUpsertProfilesOperator(method="s3", **kwargs)
    with pytest.raises(ValueError, match="bulk_threshold must be at least 1"):
        OptimizelyDcpUpsertProfilesOperator(bulk_threshold=0, **kwargs)
    templated = OptimizelyDcpUpsertProfilesOperator(
        method="{{ params.method }}", bulk_threshold="{{ params.n }}", **kwargs
    )
    assert {"method", "bulk_threshold", "upload_timeout"} <= set(templated.template_fields)
    assert OptimizelyDcpUpsertProfilesOperator(**kwargs).method == "auto"


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
    with pytest.raises(AirflowFailException, match="keyed by cookie 'cid'"):
        create_table(hook)
    assert create_table(hook, keyfield_locator_type="cookie", keyfield_locator_name="cid") == 3


def register(hook, table_id, **kwargs):
    op = OptimizelyDcpRegisterAttributesOperator(task_id="register", table_id=table_id, **kwargs)
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
    with pytest.raises(AirflowFailException, match=r"visits: registered as double, asked long"):
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
    with pytest.raises(AirflowFailException, match=r"datetime \(epoch\)"):
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
    with pytest.raises(AirflowFailException, match="is a number"):
        register(FakeDcp(), "customers", attributes=[])


def test_bad_attribute_lists_fail_the_task_without_retry():
    with pytest.raises(AirflowFailException, match="DCP datatype must be one of"):
        register(FakeDcp(), 9, attributes=[{"name": "a", "datatype": "integer"}])
