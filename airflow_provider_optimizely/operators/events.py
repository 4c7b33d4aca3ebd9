"""OptimizelySendEventsOperator: stream rows as ODP events, 500 a request (API.md §5).

Give the SQL a data interval so that each DAG run sends exactly its own events::

    OptimizelySendEventsOperator(
        task_id="send_orders",
        conn_id="optimizely_odp_default",
        sql_conn_id="warehouse",
        sql=(
            "SELECT 'order' AS type, 'purchase' AS action, email, order_id, total FROM orders "
            "WHERE created_at >= '{{ data_interval_start }}' AND created_at < '{{ data_interval_end }}'"
        ),
        identifier_columns={"email": "email"},
    )
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import TYPE_CHECKING, Any, ClassVar

from airflow_provider_optimizely.core.sync import SyncConfigError, Writer
from airflow_provider_optimizely.core.writers.odp import OdpEventWriter
from airflow_provider_optimizely.hooks.odp import OptimizelyOdpHook
from airflow_provider_optimizely.operators._data import SOURCE_TEMPLATE_FIELDS, DataOperator
from airflow_provider_optimizely.operators._dispatch import SEND_EVENTS

if TYPE_CHECKING:
    from airflow_provider_optimizely.hooks.base import OptimizelyBaseHook


class OptimizelySendEventsOperator(DataOperator):
    """Send one event per source row and return a run report (the XCom).

    :param conn_id: an ``optimizely_odp`` connection (the only API with events).
    :param event_type: the ``type`` of every event; else each row's ``type_column``.
    :param action: the ``action`` of every event; else each row's ``action_column`` (optional).
    :param identifier_columns: ``{identifier name: column}`` (or a list of columns named like the
        identifiers: ``["email"]``). Without it, each row's ``identifiers`` column holds an object.
    :param data_columns: ``{column: data field}`` (or a list). Without it, a ``data`` column holding an
        object, else every other column of the row, is the event's ``data``.
    :param batch_size: events per request, at most 500.
    Source, ``max_rejected`` and ``max_concurrency``: as ``OptimizelyUpsertProfilesOperator``. An event ODP
    refuses (``invalids``) is reported with its row and reason, and the rest of its batch is resent.
    """

    capability = SEND_EVENTS
    template_fields: Sequence[str] = (
        "conn_id",
        *SOURCE_TEMPLATE_FIELDS,
        "event_type",
        "action",
        "identifier_columns",
        "data_columns",
        "max_rejected",
    )
    template_fields_renderers: ClassVar[dict[str, str]] = {
        "sql": "sql",
        "parameters": "json",
        "identifier_columns": "json",
        "data_columns": "json",
    }
    ui_color = "#d6e9ff"

    def __init__(
        self,
        *,
        conn_id: str = "optimizely_odp_default",
        event_type: str | None = None,
        type_column: str = "type",
        action: str | None = None,
        action_column: str | None = "action",
        identifier_columns: Mapping[str, str] | Sequence[str] | None = None,
        data_columns: Mapping[str, str] | Sequence[str] | None = None,
        batch_size: int | None = None,
        **kwargs: Any,
    ) -> None:
        super().__init__(conn_id=conn_id, **kwargs)
        self.event_type = event_type
        self.type_column = type_column
        self.action = action
        self.action_column = action_column
        self.identifier_columns = identifier_columns
        self.data_columns = data_columns
        self.batch_size = batch_size

    def build_writer(self, hook: OptimizelyBaseHook) -> Writer:
        if not isinstance(hook, OptimizelyOdpHook):
            raise SyncConfigError(f"connection {self.conn_id!r}: events go to ODP only")
        return OdpEventWriter(
            hook,
            event_type=self.event_type,
            type_column=self.type_column,
            action=self.action,
            action_column=self.action_column,
            identifier_columns=self.identifier_columns,
            data_columns=self.data_columns,
            batch_size=self.batch_size,
        )
