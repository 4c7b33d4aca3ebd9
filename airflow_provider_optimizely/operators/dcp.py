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

from collections.abc import Iterable, Mapping, Sequence
from typing import TYPE_CHECKING, Any, ClassVar

from airflow.sdk.exceptions import AirflowFailException

from airflow_provider_optimizely.assets import DCP_TABLE
from airflow_provider_optimizely.core.concurrency import AdaptiveConcurrency
from airflow_provider_optimizely.core.dcp_channel import (
    DEFAULT_BULK_THRESHOLD,
    ChannelSettings,
    parse_method,
    parse_threshold,
    sync_by_channel,
)
from airflow_provider_optimizely.core.dcp_channel.bulk import (
    DEFAULT_MAX_POLL_INTERVAL,
    DEFAULT_POLL_INTERVAL,
    DEFAULT_UPLOAD_TIMEOUT,
)
from airflow_provider_optimizely.core.incremental import ChangeFilter, EventFilter
from airflow_provider_optimizely.core.page import Page
from airflow_provider_optimizely.core.partitions import Partition
from airflow_provider_optimizely.core.report import ProgressLog, RunReport, request_counts
from airflow_provider_optimizely.core.sync import Writer
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
from airflow_provider_optimizely.operators._dcp_channel import TableImportPath
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
    """Write the DCP customer profiles of the source's rows that changed; return the run report.

    Values are checked against the table's registered attributes before sending: a source column that is
    no attribute fails the task before any row is read, and a value of the wrong datatype or format is
    rejected by row and column. Only the attributes a row carries are written (an empty cell writes
    nothing); the others keep their stored values.

    The rows to send (after change detection) go by the cheaper channel for their number
    (docs/dcp-channel.md): through the profile API, a request a profile, or as one CSV of only those
    rows through the table's S3 import path, acknowledged once Upload History says DCP processed it
    (rows it refused are carried over to the next run). The report's ``channel`` says which and why.

    :param table_id: the DCP table (typically ``create_table.output``).
    :param identifier_column: the source column holding each profile's customerId.
    :param column_mapping: ``{source column: attribute}`` (or a list of columns). Without it, every
        column but the identifier is written under its own name.
    :param method: ``"auto"`` (default): a file when at least ``bulk_threshold`` changed rows fit one,
        else the profile API; ``"rest"`` or ``"bulk"`` force one. A row that leaves an attribute of the
        file empty always goes through the profile API (an empty cell in a file is not "no value").
    :param bulk_threshold: changed rows from which ``auto`` uploads a file (default 1,000: chosen by
        ``benchmarks/bench_dcp_channel.py``, see docs/dcp-channel.md for DCP's processing queue).
    :param upload_timeout: seconds to wait for Upload History to settle the file before the task fails
        (a retry waits for the same file); ``poll_interval`` the first wait between checks, doubling
        up to ``max_poll_interval`` (a minute).
    :param aws_conn_id: an Amazon connection for the S3 endpoint and botocore settings of the upload
        (never its keys: DCP takes only the table's), as ``OptimizelyDcpBulkUploadOperator`` has it.
    :param transfer_config_args: ``boto3.s3.transfer.TransferConfig`` settings of the upload.
    :param work_dir: where the change set is spooled while the channel is chosen (default: temp dir).
    :param conn_id: an ``optimizely`` connection (default ``optimizely_default``).
    Source, ``max_rejected``, ``max_concurrency``, sync state: see ``RowSyncOperator``.
    """

    hook_class = OptimizelyDcpHook
    default_max_concurrency = "auto"
    operation = "upsert-profiles"
    target_kind = DCP_TABLE
    target_link = DcpTableLink
    operator_extra_links = (DcpTableLink(),)
    template_fields: Sequence[str] = (
        *RowSyncOperator.template_fields,
        "table_id",
        "identifier_column",
        "column_mapping",
        "method",
        "bulk_threshold",
        "upload_timeout",
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
        method: str = "auto",
        bulk_threshold: int | str = DEFAULT_BULK_THRESHOLD,
        upload_timeout: float | str = DEFAULT_UPLOAD_TIMEOUT,
        poll_interval: float = DEFAULT_POLL_INTERVAL,
        max_poll_interval: float = DEFAULT_MAX_POLL_INTERVAL,
        aws_conn_id: str | None = None,
        transfer_config_args: Mapping[str, Any] | None = None,
        work_dir: str | None = None,
        **kwargs: Any,
    ) -> None:
        super().__init__(**kwargs)
        if "{{" not in str(method):
            parse_method(method)
        if "{{" not in str(bulk_threshold):
            parse_threshold(bulk_threshold)
        self.table_id = table_id
        self.identifier_column = identifier_column
        self.column_mapping = column_mapping
        self.method = method
        self.bulk_threshold = bulk_threshold
        self.upload_timeout = upload_timeout
        self.poll_interval = float(poll_interval)
        self.max_poll_interval = float(max_poll_interval)
        self.aws_conn_id = aws_conn_id
        self.transfer_config_args = dict(transfer_config_args or {})
        self.work_dir = work_dir
        self._ti: Any = None
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

    def execute(self, context: Context) -> dict[str, Any]:
        self._ti = context.get("ti")  # names the bulk channel's file after this run
        return super().execute(context)

    def send_pages(
        self,
        pages: Iterable[Page],
        writer: Writer,
        hook: OptimizelyDcpHook,
        *,
        report: RunReport,
        changes: ChangeFilter | EventFilter | None,
        partition: Partition | None,
        concurrency: int,
        adaptive: AdaptiveConcurrency | None,
        progress: ProgressLog,
    ) -> None:
        assert isinstance(writer, DcpProfileWriter) and not isinstance(changes, EventFilter)
        try:
            settings = ChannelSettings(
                method=parse_method(self.method),
                bulk_threshold=parse_threshold(self.bulk_threshold),
                upload_timeout=float(self.upload_timeout),
                poll_interval=self.poll_interval,
                max_poll_interval=max(self.poll_interval, self.max_poll_interval),
            )
        except ValueError as exc:  # a setting that no retry would change
            raise AirflowFailException(str(exc)) from None

        def bulk_target() -> TableImportPath:
            return TableImportPath(
                hook,
                writer.table_id,
                self._ti,
                aws_conn_id=self.aws_conn_id,
                transfer_config_args=self.transfer_config_args,
            )

        sync_by_channel(
            pages,
            writer,
            report=report,
            settings=settings,
            bulk_target=bulk_target,
            changes=changes,
            partition=partition,
            max_concurrency=concurrency,
            concurrency=adaptive,
            max_rejected=self.max_rejected,
            progress=progress,
            request_stats=hook.client.stats.as_dict,
            work_dir=self.work_dir,
            logger=self.log,
        )


__all__ = [
    "OptimizelyDcpBulkUploadOperator",
    "OptimizelyDcpCreateTableOperator",
    "OptimizelyDcpRegisterAttributesOperator",
    "OptimizelyDcpUpsertProfilesOperator",
]
