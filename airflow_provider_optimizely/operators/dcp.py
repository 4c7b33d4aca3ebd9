"""Operators of Optimizely Dynamic Customer Profiles (DCP) (docs/api-contract.md §4).

- ``OptimizelyDcpCreateTableOperator``: a table (datasource) unless one of the name exists; returns its id.
- ``OptimizelyDcpRegisterAttributesOperator``: the attributes the table lacks; returns what it created.
- ``OptimizelyDcpUpsertProfilesOperator``: ``POST customer_profile/{svc}/{table}/{id}`` a row; returns a
  run report. DCP merges: attributes a row does not carry keep their stored values.
- ``OptimizelyDcpBulkUploadOperator``: a checked CSV/TSV into the table's S3 import path
  (``operators.dcp_bulk_upload``, re-exported here); ``sensors.dcp.OptimizelyDcpUploadHistorySensor``
  waits until DCP processed it.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import TYPE_CHECKING, Any, ClassVar

from airflow.sdk.exceptions import AirflowFailException

from airflow_provider_optimizely.assets import DCP_TABLE
from airflow_provider_optimizely.core.report import request_counts
from airflow_provider_optimizely.core.target_setup import (
    DEFAULT_SERVICE_NAME,
    DcpAttributes,
    DcpTableSpec,
    TargetSetupError,
    dcp_table,
)
from airflow_provider_optimizely.core.writers.dcp import DcpProfileWriter
from airflow_provider_optimizely.hooks.dcp import OptimizelyDcpHook
from airflow_provider_optimizely.links import DcpTableLink
from airflow_provider_optimizely.operators._attributes import RegisterAttributesOperator
from airflow_provider_optimizely.operators._base import OptimizelyBaseOperator
from airflow_provider_optimizely.operators._row_sync import RowSyncOperator
from airflow_provider_optimizely.operators._target import mapped_fields
from airflow_provider_optimizely.operators.dcp_bulk_upload import OptimizelyDcpBulkUploadOperator

if TYPE_CHECKING:
    from airflow.sdk import Context

_UI_COLOR = "#d6e9ff"


def table_id_of(value: Any) -> int:
    """A DCP table id (an int, or its text from a template); a clear error for anything else."""
    try:
        return int(str(value))
    except (TypeError, ValueError):
        raise AirflowFailException(f"a DCP table id is a number, got {value!r}") from None


class OptimizelyDcpCreateTableOperator(OptimizelyBaseOperator[OptimizelyDcpHook]):
    """Create a DCP table unless a live one of that name exists; return its id (the XCom value).

    The service is the connection's extra ``dcp_service_id``, else the account's one service; an account
    with none gets one named ``service_name``. Every page of the service's tables is searched first. An
    existing table keyed differently is an error, not a silent match. A create whose request may have
    been applied twice (a timeout after sending) is checked: the oldest table of the name is kept and any
    newer one archived.

    :param table_name: the table's name.
    :param keyfield_locator_type: where DCP finds the customer id: ``uid``, ``cookie``,
        ``query parameter`` or ``js_variable``.
    :param keyfield_locator_name: the cookie, parameter or variable name (needed unless ``uid``).
    :param description: the table's description.
    :param service_name: the name of a service created for an account that has none.
    :param conn_id: an ``optimizely`` connection (default ``optimizely_default``).
    """

    hook_class = OptimizelyDcpHook
    template_fields: Sequence[str] = (
        "conn_id",
        "table_name",
        "keyfield_locator_type",
        "keyfield_locator_name",
        "description",
        "service_name",
    )
    ui_color = _UI_COLOR

    def __init__(
        self,
        *,
        table_name: str,
        keyfield_locator_type: str = "uid",
        keyfield_locator_name: str | None = None,
        description: str | None = None,
        service_name: str = DEFAULT_SERVICE_NAME,
        **kwargs: Any,
    ) -> None:
        super().__init__(**kwargs)
        self.table_name = table_name
        self.keyfield_locator_type = keyfield_locator_type
        self.keyfield_locator_name = keyfield_locator_name
        self.description = description
        self.service_name = service_name

    def execute(self, context: Context) -> int:
        hook = self.hook
        spec = DcpTableSpec(
            self.table_name,
            self.keyfield_locator_type,
            self.keyfield_locator_name,
            self.description,
            self.service_name,
        )
        try:
            table_id = dcp_table(hook, spec, lambda: hook.client.stats.maybe_applied_twice, self.log)
        except TargetSetupError as exc:
            raise AirflowFailException(str(exc)) from None
        self.log.info("requests: %s", request_counts(hook.client.stats.as_dict()))
        return table_id


class OptimizelyDcpRegisterAttributesOperator(RegisterAttributesOperator[OptimizelyDcpHook]):
    """Register the attributes a DCP table lacks; return what it created and what existed.

    An attribute that exists with another datatype or datetime format fails the task before anything is
    created: DCP never changes an attribute's datatype (archive it and register it anew).

    :param table_id: the DCP table (typically ``create_table.output``).
    :param attributes: ``[{name, datatype, format?, description?}]``, ``datatype`` one of string, bool,
        long, double, datetime (with ``format`` yyyy-mm-dd, yyyy-mm-ddThh:mm:ssZ or epoch); or infer
        them with ``sql_conn_id`` + ``source_table`` (see the base's parameters: ``include``,
        ``exclude``, ``overrides``, ``identifier_column``).
    :param conn_id: an ``optimizely`` connection (default ``optimizely_default``).
    """

    hook_class = OptimizelyDcpHook
    template_fields: Sequence[str] = (*RegisterAttributesOperator.template_fields, "table_id")
    target_kind = "dcp"
    ui_color = _UI_COLOR

    def __init__(self, *, table_id: int | str, **kwargs: Any) -> None:
        super().__init__(**kwargs)
        self.table_id = table_id

    def registry(self, hook: OptimizelyDcpHook) -> DcpAttributes:
        return DcpAttributes(hook, table_id_of(self.table_id))

    def target_id(self) -> int:
        return table_id_of(self.table_id)


class OptimizelyDcpUpsertProfilesOperator(RowSyncOperator[OptimizelyDcpHook]):
    """Write one DCP customer profile per source row (one request each); return the run report.

    Values are checked against the table's registered attributes before sending: a source column that is
    no attribute fails the task before any row is read, and a value of the wrong datatype or format is
    rejected by row and column. Only the attributes a row carries are written (an empty cell writes
    nothing); the others keep their stored values. For large loads, ``OptimizelyDcpBulkUploadOperator``.

    :param table_id: the DCP table (typically ``create_table.output``).
    :param identifier_column: the source column holding each profile's customerId.
    :param column_mapping: ``{source column: attribute}`` (or a list of columns). Without it, every
        column but the identifier is written under its own name.
    :param conn_id: an ``optimizely`` connection (default ``optimizely_default``).
    Source, ``max_rejected``, ``max_concurrency``: see ``RowSyncOperator``.
    """

    hook_class = OptimizelyDcpHook
    operation = "upsert-profiles"
    target_kind = DCP_TABLE
    target_link = DcpTableLink
    operator_extra_links = (DcpTableLink(),)
    template_fields: Sequence[str] = (
        *RowSyncOperator.template_fields,
        "table_id",
        "identifier_column",
        "column_mapping",
    )
    template_fields_renderers: ClassVar[dict[str, str]] = {
        **RowSyncOperator.template_fields_renderers,
        "column_mapping": "json",
    }
    ui_color = _UI_COLOR

    def __init__(
        self,
        *,
        table_id: int | str,
        identifier_column: str,
        column_mapping: Mapping[str, str] | Sequence[str] | None = None,
        **kwargs: Any,
    ) -> None:
        super().__init__(**kwargs)
        self.table_id = table_id
        self.identifier_column = identifier_column
        self.column_mapping = column_mapping
        self.declare_target()

    def target_argument(self) -> Any:
        return self.table_id

    def target_name(self) -> str:
        return str(table_id_of(self.table_id))

    def written_fields(self, columns: Sequence[str] | None) -> list[tuple[str | None, str]]:
        return mapped_fields(columns, self.identifier_column, "customerId", self.column_mapping)

    def build_writer(self, hook: OptimizelyDcpHook) -> DcpProfileWriter:
        return DcpProfileWriter(
            hook,
            table_id=table_id_of(self.table_id),
            identifier_column=self.identifier_column,
            columns=self.column_mapping,
        )


__all__ = [
    "OptimizelyDcpBulkUploadOperator",
    "OptimizelyDcpCreateTableOperator",
    "OptimizelyDcpRegisterAttributesOperator",
    "OptimizelyDcpUpsertProfilesOperator",
]
