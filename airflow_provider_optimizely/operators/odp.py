"""Operators of the Optimizely Data Platform (ODP) v3 REST API (docs/api-contract.md §5).

- ``OptimizelyOdpCreateObjectTypeOperator``: ``POST /schema/objects/{object_type}`` unless it exists;
  returns the object type.
- ``OptimizelyOdpRegisterFieldsOperator``: ``POST /schema/objects/{object_type}/fields`` for the missing
  fields only; returns what it created and what existed.
- ``OptimizelyOdpUpsertProfilesOperator``: ``POST /profiles``, up to 500 a request; returns a run report.
- ``OptimizelyOdpSendEventsOperator``: ``POST /events``, up to 500 a request; returns a run report.

ODP merges profile attributes: an attribute a row does not carry keeps its stored value.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import TYPE_CHECKING, Any, ClassVar

from airflow.sdk.exceptions import AirflowFailException

from airflow_provider_optimizely.assets import ODP_OBJECT
from airflow_provider_optimizely.core.mapping import normalise_mapping
from airflow_provider_optimizely.core.sync import Writer
from airflow_provider_optimizely.core.sync_state import IntervalRun, KeyRun
from airflow_provider_optimizely.core.target_setup import OdpFields, TargetSetupError, odp_object_type
from airflow_provider_optimizely.core.writers.odp import OdpEventWriter, OdpProfileWriter
from airflow_provider_optimizely.hooks.odp import OptimizelyOdpHook
from airflow_provider_optimizely.links import OdpObjectLink
from airflow_provider_optimizely.operators._attributes import RegisterAttributesOperator
from airflow_provider_optimizely.operators._base import OptimizelyBaseOperator, as_bool
from airflow_provider_optimizely.operators._row_sync import (
    RowSyncOperator,
)
from airflow_provider_optimizely.operators._sync_state import (
    CHECKPOINT_ITEMS,
    CHECKPOINT_SECONDS,
    default_sync_id,
)
from airflow_provider_optimizely.operators._target import mapped_fields

if TYPE_CHECKING:
    from airflow.sdk import Context

_UI_COLOR = "#e3d9f7"


class OptimizelyOdpCreateObjectTypeOperator(OptimizelyBaseOperator[OptimizelyOdpHook]):
    """Create an ODP object type unless it exists; return its name (the XCom value).

    :param object_type: the object type's name (lower case, as ODP names objects).
    :param display_name: its name in the ODP UI (default: the name in title case).
    :param description: its description.
    :param conn_id: an ``optimizely_odp`` connection (default ``optimizely_odp_default``).
    """

    hook_class = OptimizelyOdpHook
    template_fields: Sequence[str] = ("conn_id", "object_type", "display_name", "description")
    ui_color = _UI_COLOR

    def __init__(
        self,
        *,
        object_type: str,
        display_name: str | None = None,
        description: str | None = None,
        **kwargs: Any,
    ) -> None:
        super().__init__(**kwargs)
        self.object_type = object_type
        self.display_name = display_name
        self.description = description

    def execute(self, context: Context) -> str:
        try:
            return odp_object_type(self.hook, self.object_type, self.display_name, self.description, self.log)
        except TargetSetupError as exc:
            raise AirflowFailException(str(exc)) from None


class OptimizelyOdpRegisterFieldsOperator(RegisterAttributesOperator[OptimizelyOdpHook]):
    """Create the fields an ODP object type lacks; return what it created and what existed.

    :param object_type: the object type (typically ``create_object_type.output``).
    :param attributes: ``[{name, type, display_name?, description?}]``, ``type`` one of string, number,
        boolean, timestamp; or infer them with ``sql_conn_id`` + ``source_table`` (see the base's
        parameters: ``include``, ``exclude``, ``overrides``, ``identifier_column``).
    :param conn_id: an ``optimizely_odp`` connection (default ``optimizely_odp_default``).
    """

    hook_class = OptimizelyOdpHook
    template_fields: Sequence[str] = (*RegisterAttributesOperator.template_fields, "object_type")
    target_kind = "odp"
    ui_color = _UI_COLOR

    def __init__(self, *, object_type: str, **kwargs: Any) -> None:
        super().__init__(**kwargs)
        self.object_type = object_type

    def registry(self, hook: OptimizelyOdpHook) -> OdpFields:
        return OdpFields(hook, str(self.object_type))

    def target_id(self) -> str:
        return str(self.object_type)


class _OdpSync(RowSyncOperator[OptimizelyOdpHook]):
    """A sync into ODP; its target is an object type (``customers`` for profiles, ``events``)."""

    target_kind = ODP_OBJECT
    target_link = OdpObjectLink
    operator_extra_links = (OdpObjectLink(),)
    object_type: ClassVar[str]

    def target_argument(self) -> Any:
        return self.object_type

    def target_name(self) -> str:
        return self.object_type


class OptimizelyOdpUpsertProfilesOperator(_OdpSync):
    """Create or update one ODP customer profile per source row, 500 a request; return the run report.

    Attributes are checked against the fields of the ``customers`` object before anything is read: a
    source column that is no field fails the task at once, naming it. A value ODP refuses
    (``invalids``) is reported with its row and reason, and the rest of its batch is resent.

    :param identifier_column: the source column holding each profile's identifier value.
    :param identifier_name: the ODP identifier field (``email``, ``customer_id``...); default: the
        column's name.
    :param column_mapping: ``{source column: field}`` (or a list of columns). Without it, every column
        but the identifier is written under its own name.
    :param batch_size: profiles per request, at most 500.
    :param conn_id: an ``optimizely_odp`` connection with the private API key (``POST /profiles`` refuses
        the public key).
    Source, ``max_rejected``, ``max_concurrency``: see ``RowSyncOperator``.
    """

    hook_class = OptimizelyOdpHook
    operation = "upsert-profiles"
    object_type = "customers"
    template_fields: Sequence[str] = (
        *RowSyncOperator.template_fields,
        "identifier_column",
        "identifier_name",
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
        identifier_column: str,
        identifier_name: str | None = None,
        column_mapping: Mapping[str, str] | Sequence[str] | None = None,
        batch_size: int | None = None,
        **kwargs: Any,
    ) -> None:
        super().__init__(**kwargs)
        self.identifier_column = identifier_column
        self.identifier_name = identifier_name
        self.column_mapping = column_mapping
        self.batch_size = batch_size
        self.declare_target()

    def written_fields(self, columns: Sequence[str] | None) -> list[tuple[str | None, str]]:
        key = self.identifier_name or self.identifier_column
        return mapped_fields(columns, self.identifier_column, f"identifiers.{key}", self.column_mapping)

    def build_writer(self, hook: OptimizelyOdpHook) -> OdpProfileWriter:
        return OdpProfileWriter(
            hook,
            identifier_column=self.identifier_column,
            identifier_name=self.identifier_name or None,
            columns=self.column_mapping,
            batch_size=self.batch_size,
        )


class OptimizelyOdpSendEventsOperator(_OdpSync):
    """Send one ODP event per source row, 500 a request; return the run report.

    Give the SQL a data interval so that each DAG run sends exactly its own events::

        OptimizelyOdpSendEventsOperator(
            task_id="send_orders",
            sql_conn_id="warehouse",
            sql=(
                "SELECT 'order' AS type, 'purchase' AS action, email, order_id, total FROM orders "
                "WHERE created_at >= '{{ data_interval_start }}' AND created_at < '{{ data_interval_end }}'"
            ),
            identifier_columns={"email": "email"},
        )

    A run triggered by hand without a logical date has no data interval: ``data_interval_start`` is then
    undefined in templates (``example_odp_daily_events`` shows a fallback to the day before it ran).

    Each interval is sent once: the sync state records an interval whose events were all answered, and
    a later run of the same interval sends nothing and says so (``force=True`` sends it again; a
    backfill of a past interval works as any run). A run that stopped (a killed worker) resumes: each
    event's identity is the fingerprint of its payload, so the events answered before are not sent
    again, and those in flight at the stop are counted as resent. A run with no data interval keeps no
    state.

    :param event_type: the ``type`` of every event; else each row's ``type_column``.
    :param action: the ``action`` of every event; else each row's ``action_column``. ODP requires an
        action: a row without one is rejected, naming it.
    :param identifier_columns: ``{identifier name: column}`` (or a list of columns named like the
        identifiers: ``["email"]``). Without it, each row's ``identifiers`` column holds an object.
    :param data_columns: ``{column: data field}`` (or a list). Without it, a ``data`` column holding an
        object, else every other column of the row, is the event's ``data``.
    :param batch_size: events per request, at most 500.
    :param force: send an interval that an earlier run sent already.
    :param conn_id: an ``optimizely_odp`` connection (default ``optimizely_odp_default``).
    Source, ``max_rejected``, ``max_concurrency``, the sync state: see ``RowSyncOperator``.
    """

    hook_class = OptimizelyOdpHook
    operation = "send-events"
    object_type = "events"
    template_fields: Sequence[str] = (
        *RowSyncOperator.template_fields,
        "event_type",
        "action",
        "identifier_columns",
        "data_columns",
        "force",
    )
    template_fields_renderers: ClassVar[dict[str, str]] = {
        **RowSyncOperator.template_fields_renderers,
        "identifier_columns": "json",
        "data_columns": "json",
    }
    ui_color = _UI_COLOR

    def __init__(
        self,
        *,
        event_type: str | None = None,
        type_column: str = "type",
        action: str | None = None,
        action_column: str = "action",
        identifier_columns: Mapping[str, str] | Sequence[str] | None = None,
        data_columns: Mapping[str, str] | Sequence[str] | None = None,
        batch_size: int | None = None,
        force: bool | str = False,
        **kwargs: Any,
    ) -> None:
        super().__init__(**kwargs)
        self.force = force
        self.event_type = event_type
        self.type_column = type_column
        self.action = action
        self.action_column = action_column
        self.identifier_columns = identifier_columns
        self.data_columns = data_columns
        self.batch_size = batch_size
        self.declare_target()

    def written_fields(self, columns: Sequence[str] | None) -> list[tuple[str | None, str]]:
        """The event's type and action (from columns unless fixed), identifiers and data (the writer's rule:
        without ``data_columns``, every other column, unless a ``data`` column holds an object)."""
        fields: list[tuple[str | None, str]] = [
            (None if self.event_type else self.type_column, "type"),
            (None if self.action else self.action_column, "action"),
        ]
        identifiers = self._identifier_mapping()
        if identifiers is None:
            fields.append(("identifiers", "identifiers"))
        else:
            fields += [(column, f"identifiers.{name}") for column, name in identifiers.items()]
        data = normalise_mapping(self.data_columns, "data_columns")
        if data is None and columns is not None and "data" in columns:
            data = {"data": "data"}
        elif data is None:
            taken = {self.type_column, self.action_column, "identifiers", *(identifiers or {})}
            data = {column: f"data.{column}" for column in columns or () if column not in taken}
        else:
            data = {column: f"data.{field}" for column, field in data.items()}
        return fields + list(data.items())

    def _identifier_mapping(self) -> dict[str, str] | None:
        """``{column: identifier name}``, as the writer keeps it."""
        given = self.identifier_columns
        if isinstance(given, Mapping):
            return {str(column): str(name) for name, column in given.items()}
        return normalise_mapping(given, "identifier_columns")

    def build_writer(self, hook: OptimizelyOdpHook) -> OdpEventWriter:
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

    def begin_state(
        self, writer: Writer, hook: OptimizelyOdpHook, context: Context
    ) -> KeyRun | IntervalRun | None:
        """The run of this data interval's events (resumed if an earlier attempt stopped)."""
        ti = self.state_wanted(context)
        if ti is None:
            return None
        start, end = context.get("data_interval_start"), context.get("data_interval_end")
        if start is None or end is None:
            self.log.info("this run has no data interval (no logical date): its events are sent as they are")
            return None
        force = as_bool(self.force, "force")
        run = self.state_of(
            self.sync_id or default_sync_id(ti, writer.target, self.partition)
        ).begin_interval(
            start.isoformat(),
            end.isoformat(),
            force=force,
            dry_run=as_bool(self.dry_run_only, "dry_run"),
            checkpoint_every_items=max(CHECKPOINT_ITEMS, writer.batch_size),
            checkpoint_every_seconds=CHECKPOINT_SECONDS,
        )
        if run.already_done is not None and not force:
            self.log.info(
                "the events of [%s, %s) were sent by an earlier run (%s): nothing is sent (force=True sends "
                "them again)",
                run.start,
                run.end,
                run.already_done.get("completed_at"),
            )
        elif run.resumed:
            self.log.info(
                "attempt %d resumes the interval [%s, %s): %d event(s) answered before are not sent again",
                run.attempt,
                run.start,
                run.end,
                run.acknowledged_before,
            )
        return run


__all__ = [
    "OptimizelyOdpCreateObjectTypeOperator",
    "OptimizelyOdpRegisterFieldsOperator",
    "OptimizelyOdpSendEventsOperator",
    "OptimizelyOdpUpsertProfilesOperator",
]
