"""Checked by mypy (``make lint``), never run: each operator's ``hook`` is its API's concrete hook class,
and each hook satisfies the protocol its writers and target-setup code call."""

from __future__ import annotations

from typing import assert_type

from airflow_provider_optimizely.core.target_setup import DcpTablesApi, OdpSchemaApi
from airflow_provider_optimizely.core.upload_history import UploadHistorySource
from airflow_provider_optimizely.core.writers.dcp import DcpApi
from airflow_provider_optimizely.core.writers.odp import OdpApi
from airflow_provider_optimizely.core.writers.optimove import OptimoveApi
from airflow_provider_optimizely.core.writers.profile_store import ProfileStoreApi
from airflow_provider_optimizely.hooks.dcp import OptimizelyDcpHook
from airflow_provider_optimizely.hooks.odp import OptimizelyOdpHook
from airflow_provider_optimizely.hooks.optimove import OptimoveHook
from airflow_provider_optimizely.hooks.profile_store import OptimizelyProfileStoreHook
from airflow_provider_optimizely.operators.dcp import (
    OptimizelyDcpBulkUploadOperator,
    OptimizelyDcpCreateTableOperator,
    OptimizelyDcpRegisterAttributesOperator,
    OptimizelyDcpUpsertProfilesOperator,
)
from airflow_provider_optimizely.operators.odp import (
    OptimizelyOdpCreateObjectTypeOperator,
    OptimizelyOdpRegisterFieldsOperator,
    OptimizelyOdpSendEventsOperator,
    OptimizelyOdpUpsertProfilesOperator,
)
from airflow_provider_optimizely.operators.optimove import (
    OptimoveCreateDataConnectionOperator,
    OptimoveUploadRecordsOperator,
)
from airflow_provider_optimizely.operators.profile_store import (
    OptimizelyProfileStoreDeleteProfilesOperator,
    OptimizelyProfileStorePutProfilesOperator,
)
from airflow_provider_optimizely.sensors.dcp import OptimizelyDcpUploadHistorySensor


def operator_hooks(
    dcp_create: OptimizelyDcpCreateTableOperator,
    dcp_register: OptimizelyDcpRegisterAttributesOperator,
    dcp_upsert: OptimizelyDcpUpsertProfilesOperator,
    dcp_upload: OptimizelyDcpBulkUploadOperator,
    dcp_wait: OptimizelyDcpUploadHistorySensor,
    odp_create: OptimizelyOdpCreateObjectTypeOperator,
    odp_register: OptimizelyOdpRegisterFieldsOperator,
    odp_upsert: OptimizelyOdpUpsertProfilesOperator,
    odp_events: OptimizelyOdpSendEventsOperator,
    store_put: OptimizelyProfileStorePutProfilesOperator,
    store_delete: OptimizelyProfileStoreDeleteProfilesOperator,
    optimove_create: OptimoveCreateDataConnectionOperator,
    optimove_upload: OptimoveUploadRecordsOperator,
) -> None:
    assert_type(dcp_create.hook, OptimizelyDcpHook)
    assert_type(dcp_register.hook, OptimizelyDcpHook)
    assert_type(dcp_upsert.hook, OptimizelyDcpHook)
    assert_type(dcp_upload.hook, OptimizelyDcpHook)
    assert_type(dcp_wait.hook, OptimizelyDcpHook)
    assert_type(odp_create.hook, OptimizelyOdpHook)
    assert_type(odp_register.hook, OptimizelyOdpHook)
    assert_type(odp_upsert.hook, OptimizelyOdpHook)
    assert_type(odp_events.hook, OptimizelyOdpHook)
    assert_type(store_put.hook, OptimizelyProfileStoreHook)
    assert_type(store_delete.hook, OptimizelyProfileStoreHook)
    assert_type(optimove_create.hook, OptimoveHook)
    assert_type(optimove_upload.hook, OptimoveHook)


def hooks_satisfy_their_writers(
    dcp: OptimizelyDcpHook, odp: OptimizelyOdpHook, store: OptimizelyProfileStoreHook, optimove: OptimoveHook
) -> None:
    writes_dcp: DcpApi = dcp
    sets_up_dcp: DcpTablesApi = dcp
    reads_history: UploadHistorySource = dcp
    writes_odp: OdpApi = odp
    sets_up_odp: OdpSchemaApi = odp
    writes_store: ProfileStoreApi = store
    writes_optimove: OptimoveApi = optimove
    del writes_dcp, sets_up_dcp, reads_history, writes_odp, sets_up_odp, writes_store, writes_optimove
