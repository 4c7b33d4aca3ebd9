"""Each data operator's target: its asset URI, outlet, extra link and OpenLineage facets (the network
faked; tests/integration/test_lineage.py runs them under Airflow with PostgreSQL and the emulator)."""

from __future__ import annotations

from typing import Any

import pytest
from airflow.sdk import Asset
from airflow.sdk.definitions.asset import AssetUriRef

from airflow_provider_optimizely import get_provider_info
from airflow_provider_optimizely.assets import (
    dcp_table_asset,
    odp_object_asset,
    optimove_connection_asset,
    profile_store_scope_asset,
    target_uri,
)
from airflow_provider_optimizely.links import (
    DcpTableLink,
    OdpObjectLink,
    OptimoveConnectionLink,
    ProfileStoreScopeLink,
)
from airflow_provider_optimizely.operators.dcp import (
    OptimizelyDcpBulkUploadOperator,
    OptimizelyDcpUpsertProfilesOperator,
)
from airflow_provider_optimizely.operators.odp import (
    OptimizelyOdpSendEventsOperator,
    OptimizelyOdpUpsertProfilesOperator,
)
from airflow_provider_optimizely.operators.optimove import OptimoveUploadRecordsOperator
from airflow_provider_optimizely.operators.profile_store import (
    OptimizelyProfileStoreDeleteProfilesOperator,
    OptimizelyProfileStorePutProfilesOperator,
)
from tests.integration.helpers import write_csv
from tests.unit.operators.fakes import FakeOptimove, Ti, with_hook


class Optimove(FakeOptimove):
    """Optimove in memory, with a connection extra (what links read)."""

    def __init__(self, extras: dict[str, Any] | None = None) -> None:
        super().__init__()
        self._extras = extras or {}

    @property
    def extras(self) -> dict[str, Any]:
        return self._extras


# -- asset URIs -------------------------------------------------------------------------------------------


def test_each_api_has_a_scheme_whose_uris_airflow_normalises_with_the_providers_handler():
    # Airflow normalises the URI (not the name): a run's outlet matches by URI (Asset.ref(uri=...)).
    assert Asset("optimizely-dcp://optimizely_default/0042/").uri == dcp_table_asset(42).uri
    assert dcp_table_asset(42).uri == "optimizely-dcp://optimizely_default/42"
    assert odp_object_asset("events", "odp_eu").uri == "optimizely-odp://odp_eu/events"
    assert (
        profile_store_scope_asset().uri
        == "optimizely-profile-store://optimizely_profile_store_default/default"
    )
    assert optimove_connection_asset("a b").uri == "optimove://optimove_default/a%20b"
    with pytest.raises(ValueError, match="a DCP table id"):
        Asset("optimizely-dcp://optimizely_default/not-a-number")
    with pytest.raises(ValueError, match="names the connection"):
        Asset("optimove:///uuid")
    with pytest.raises(ValueError, match="one path segment"):
        Asset("optimizely-odp://odp/customers/extra")


def test_the_provider_registers_every_scheme_and_link():
    info = get_provider_info()
    schemes = {scheme for entry in info["asset-uris"] for scheme in entry["schemes"]}
    assert schemes == {"optimizely-dcp", "optimizely-odp", "optimizely-profile-store", "optimove"}
    assert len(info["extra-links"]) == 4
    for conn_type in info["connection-types"]:
        assert "ui_base_url" in conn_type["conn-fields"]


# -- outlets --------------------------------------------------------------------------------------------


def test_a_plain_target_is_an_outlet_when_the_task_is_built_a_templated_one_is_not():
    plain = OptimizelyDcpUpsertProfilesOperator(task_id="a", table_id=7, identifier_column="id", rows=[])
    assert plain.outlets == [dcp_table_asset(7)]
    templated = OptimizelyDcpUpsertProfilesOperator(
        task_id="b", table_id="{{ params.t }}", identifier_column="id", rows=[]
    )
    assert templated.outlets == []
    scope_from_connection = OptimizelyProfileStorePutProfilesOperator(
        task_id="c", identifier_column="id", rows=[]
    )
    assert scope_from_connection.outlets == []
    assert OptimizelyOdpSendEventsOperator(task_id="d", rows=[], conn_id="odp").outlets == [
        odp_object_asset("events", "odp")
    ]


def test_each_data_operator_declares_its_own_target():
    cases = [
        (OptimizelyDcpUpsertProfilesOperator(task_id="a", table_id=1, identifier_column="i", rows=[]), "1"),
        (OptimizelyDcpBulkUploadOperator(task_id="b", table_id="2", path="x.csv"), "2"),
        (OptimizelyOdpUpsertProfilesOperator(task_id="c", identifier_column="i", rows=[]), "customers"),
        (OptimizelyOdpSendEventsOperator(task_id="d", rows=[]), "events"),
        (
            OptimizelyProfileStorePutProfilesOperator(task_id="e", identifier_column="i", rows=[], scope="s"),
            "s",
        ),
        (OptimizelyProfileStoreDeleteProfilesOperator(task_id="f", profile_ids=["1"], scope="s"), "s"),
        (
            OptimoveUploadRecordsOperator(
                task_id="g", data_connection_uuid="u", identifier_column="i", rows=[]
            ),
            "u",
        ),
    ]
    for operator, name in cases:
        assert operator.target_name() == name
        assert [link.name for link in operator.operator_extra_links] == [operator.target_link.name]
        assert operator.outlets == [Asset(target_uri(operator.target_kind, operator.conn_id, name))]


def test_a_run_records_its_asset_by_uri_and_links_to_the_target():
    hook = Optimove()
    op = with_hook(
        OptimoveUploadRecordsOperator(
            task_id="t", data_connection_uuid="{{ x }}", identifier_column="id", rows=[{"id": 1, "a": 2}]
        ),
        hook,
    )
    op.data_connection_uuid = "dc-1"  # as rendered
    ti = Ti()
    op.execute({"ti": ti})  # type: ignore[arg-type]
    assert op.outlets == [AssetUriRef(uri="optimove://optimove_default/dc-1")]
    assert ti.pushed[OptimoveConnectionLink.key] == "https://opti-x.optimove.net/data-connections/dc-1"


def test_a_plain_outlet_is_replaced_by_its_reference_and_a_dry_run_records_no_event():
    hook = Optimove()
    op = with_hook(
        OptimoveUploadRecordsOperator(
            task_id="t",
            data_connection_uuid="dc-1",
            identifier_column="id",
            rows=[{"id": 1}],
            dry_run=True,
            outlets=[Asset("s3://bucket/other")],
        ),
        hook,
    )
    assert op.outlets == [Asset("s3://bucket/other"), optimove_connection_asset("dc-1")]
    op.state_of = lambda sync_id: _NoState()  # type: ignore[method-assign]
    with pytest.raises(_Stop):
        op.execute({"ti": Ti()})  # type: ignore[arg-type]
    assert op.outlets == [Asset("s3://bucket/other")]


class _Stop(Exception):
    pass


class _NoState:
    def begin_run(self, *args: Any, **kwargs: Any) -> Any:
        raise _Stop


# -- links ----------------------------------------------------------------------------------------------


def test_links_use_the_connections_ui_base_url_else_the_inferred_default():
    api = "https://api.example.test/v3"
    assert DcpTableLink.url("12", {}, api) == "https://app.optimizely.com/v2/dcp/datasources/12"
    assert OdpObjectLink.url("customers", {"ui_base_url": "https://eu.odp.test/"}, api) == (
        "https://eu.odp.test/app#/objects/customers"
    )
    # Profile Store has no central UI: the instance (the connection's host) unless the extra says.
    assert ProfileStoreScopeLink.url("a/b", {}, "https://me.profilestore.test/api") == (
        "https://me.profilestore.test/profiles?scope=a%2Fb"
    )


def test_a_task_that_pushes_no_xcom_persists_no_link():
    op = OptimizelyDcpUpsertProfilesOperator(
        task_id="t", table_id=1, identifier_column="id", rows=[], do_xcom_push=False
    )
    ti = Ti()
    DcpTableLink.persist({"ti": ti}, op, "https://x")  # type: ignore[arg-type]
    assert ti.pushed == {}


# -- OpenLineage -----------------------------------------------------------------------------------------


def _as_dict(dataset: Any) -> dict[str, Any]:
    from openlineage.client.serde import Serde

    return Serde.to_dict(dataset)


def test_a_file_source_is_the_input_and_each_mapped_column_has_its_lineage(tmp_path):
    path = write_csv(
        tmp_path / "people.csv", ["id", "mail", "tier"], [[1, "a@x.io", "gold"], [2, "b@x.io", ""]]
    )
    op = with_hook(
        OptimoveUploadRecordsOperator(
            task_id="t",
            data_connection_uuid="dc-9",
            identifier_column="id",
            primary_key="customer",
            path=path,
            column_mapping={"mail": "email", "tier": "tier"},
            incremental=False,
        ),
        Optimove(),
    )
    start = op.get_openlineage_facets_on_start()
    assert [(d.namespace, d.name) for d in start.inputs] == [("file", str(tmp_path / "people.csv"))]
    assert [(d.namespace, d.name) for d in start.outputs] == [("optimove://optimove.test", "dc-9")]

    op.execute({"ti": Ti()})  # type: ignore[arg-type]
    lineage = op.get_openlineage_facets_on_complete(None)
    output = _as_dict(lineage.outputs[0])
    assert [f["name"] for f in output["facets"]["schema"]["fields"]] == ["customer", "email", "tier"]
    columns = output["facets"]["columnLineage"]["fields"]
    assert columns["email"]["inputFields"] == [
        {
            "namespace": "file",
            "name": str(tmp_path / "people.csv"),
            "field": "mail",
            "transformations": [{"type": "DIRECT", "subtype": "IDENTITY"}],
        }
    ]
    assert output["outputFacets"]["outputStatistics"]["rowCount"] == 2


def test_without_a_mapping_the_fields_are_the_sources_columns_and_a_rows_list_has_no_input():
    op = with_hook(
        OptimoveUploadRecordsOperator(
            task_id="t",
            data_connection_uuid="dc-9",
            identifier_column="id",
            rows=[{"id": 1, "x": 1, "y": 2}],
            incremental=False,
        ),
        Optimove(),
    )
    op.execute({"ti": Ti()})  # type: ignore[arg-type]
    lineage = op.get_openlineage_facets_on_complete(None)
    assert lineage.inputs == []
    output = _as_dict(lineage.outputs[0])
    assert [f["name"] for f in output["facets"]["schema"]["fields"]] == ["id", "x", "y"]
    assert "columnLineage" not in output["facets"]


def test_an_event_sync_names_type_action_identifiers_and_data():
    op = OptimizelyOdpSendEventsOperator(
        task_id="t", rows=[], event_type="order", identifier_columns={"email": "mail"}
    )
    fields = op.written_fields(["action", "mail", "total", "sku"])
    assert fields == [
        (None, "type"),
        ("action", "action"),
        ("mail", "identifiers.email"),
        ("total", "data.total"),
        ("sku", "data.sku"),
    ]


def test_the_dcp_key_is_the_customer_id():
    op = OptimizelyDcpUpsertProfilesOperator(task_id="t", table_id=3, identifier_column="uid", rows=[])
    assert op.written_fields(["uid", "a"]) == [("uid", "customerId"), ("a", "a")]


def test_without_the_openlineage_provider_an_operator_reports_no_lineage_and_fails_nothing(monkeypatch):
    import sys

    monkeypatch.setitem(sys.modules, "airflow.providers.openlineage.extractors", None)  # not installed
    op = with_hook(
        OptimoveUploadRecordsOperator(task_id="t", data_connection_uuid="u", identifier_column="id", rows=[]),
        Optimove(),
    )
    assert op.get_openlineage_facets_on_start() is None
    assert op.get_openlineage_facets_on_complete(None) is None
