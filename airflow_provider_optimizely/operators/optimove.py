"""Operators of Optimove Data Connections (docs/api-contract.md §7).

- ``OptimoveCreateDataConnectionOperator``: ``POST /connections`` unless this Airflow made one of the
  name for the account; returns its uuid.
- ``OptimoveUploadRecordsOperator``: ``POST /connections/{uuid}/upload_data``, 5000 records a request;
  returns a run report.

Optimove **replaces** each stored record whole: a field not sent is removed. So records go out whole,
and leaving columns out must be asked for (``allow_partial_records``).
"""

from __future__ import annotations

import hashlib
from collections.abc import Mapping, Sequence
from typing import TYPE_CHECKING, Any, ClassVar

from airflow.sdk import Variable
from airflow.sdk.exceptions import AirflowFailException

from airflow_provider_optimizely.assets import OPTIMOVE_CONNECTION
from airflow_provider_optimizely.core.errors import BadRequestError, NotFoundError
from airflow_provider_optimizely.core.writers.optimove import OptimoveWriter
from airflow_provider_optimizely.hooks.optimove import OptimoveHook
from airflow_provider_optimizely.links import OptimoveConnectionLink
from airflow_provider_optimizely.operators._base import OptimizelyBaseOperator, as_bool
from airflow_provider_optimizely.operators._row_sync import RowSyncOperator
from airflow_provider_optimizely.operators._target import mapped_fields

if TYPE_CHECKING:
    from airflow.sdk import Context

MEMORY_PREFIX = "optimizely_provider.optimove_connection"
_UI_COLOR = "#c9f0e4"


def remembered_connection_key(hook: OptimoveHook, name: str) -> str:
    """The Airflow Variable that remembers the data connection created for ``name`` in this account.

    The account is the API host and the brand key, hashed (the key is a secret and never stored): two
    Airflow connections to one brand share the memory, and two brands never do.
    """
    account = hashlib.sha256(f"{hook.base_url}\n{hook.brand_key}".encode()).hexdigest()[:16]
    return f"{MEMORY_PREFIX}.{account}.{name}"


def _still_exists(hook: OptimoveHook, uuid: str) -> bool:
    """Optimove has no read route: an empty upload is the cheapest question. 404: gone."""
    try:
        hook.upload_data(uuid, [])
    except NotFoundError:
        return False
    except BadRequestError:
        return True  # past the lookup of the connection: it exists, the empty body was refused
    return True


class OptimoveCreateDataConnectionOperator(OptimizelyBaseOperator[OptimoveHook]):
    """Create an Optimove data connection unless this Airflow made one of ``name`` for the same account;
    return its uuid (the XCom value).

    Optimove has no route that lists connections, so the uuid created for ``name`` is remembered in an
    Airflow Variable keyed by the account (``optimizely_provider.optimove_connection.<account>.<name>``;
    the log names it). Before a remembered uuid is reused it is checked with one empty upload: if
    Optimove no longer has it, the task fails naming the Variable to delete, or, with
    ``recreate_if_missing=True``, creates the connection again and remembers the new uuid.

    :param name: the data connection's name.
    :param primary_key: the field every record carries as its key.
    :param description: its description.
    :param recreate_if_missing: create the connection anew when the remembered one is gone.
    :param conn_id: an ``optimove`` connection (default ``optimove_default``).
    """

    hook_class = OptimoveHook
    template_fields: Sequence[str] = ("conn_id", "name", "primary_key", "description", "recreate_if_missing")
    ui_color = _UI_COLOR

    def __init__(
        self,
        *,
        name: str,
        primary_key: str,
        description: str = "",
        recreate_if_missing: bool | str = False,
        **kwargs: Any,
    ) -> None:
        super().__init__(**kwargs)
        self.name = name
        self.primary_key = primary_key
        self.description = description
        self.recreate_if_missing = recreate_if_missing

    def execute(self, context: Context) -> str:
        if not self.name or not self.primary_key:
            raise AirflowFailException("an Optimove data connection needs a name and a primary_key")
        hook = self.hook
        key = remembered_connection_key(hook, self.name)
        remembered = Variable.get(key, default=None, deserialize_json=True)
        if remembered:
            uuid = str(remembered["uuid"])
            if remembered.get("primary_key") != self.primary_key:
                raise AirflowFailException(
                    f"Optimove data connection {self.name!r} ({uuid}) was created with primary_key "
                    f"{remembered.get('primary_key')!r}, not {self.primary_key!r} (remembered in the "
                    f"Variable {key})"
                )
            if _still_exists(hook, uuid):
                self.log.info("Optimove data connection %r is %s (Variable %s)", self.name, uuid, key)
                return uuid
            if not as_bool(self.recreate_if_missing, "recreate_if_missing"):
                raise AirflowFailException(
                    f"Optimove no longer has data connection {self.name!r} ({uuid}), remembered in the "
                    f"Airflow Variable {key}. Delete that Variable to create a new connection, or set "
                    "recreate_if_missing=True"
                )
            self.log.warning("Optimove no longer has %s (%r): creating it again", uuid, self.name)
        return self._create(hook, key)

    def _create(self, hook: OptimoveHook, key: str) -> str:
        before = hook.client.stats.maybe_applied_twice
        uuid = hook.create_connection(self.name, self.primary_key, self.description).data_connection_uuid
        Variable.set(
            key,
            {"uuid": uuid, "primary_key": self.primary_key, "conn_id": self.conn_id},
            description=f"Optimove data connection {self.name!r} (OptimoveCreateDataConnectionOperator)",
            serialize_json=True,
        )
        self.log.info("created Optimove data connection %r: %s (remembered in %s)", self.name, uuid, key)
        if hook.client.stats.maybe_applied_twice > before:
            self.log.warning(
                "the create request was retried after it may have been applied: Optimove may now hold a "
                "second data connection named %r; it can't be listed through the API, check the Optimove UI",
                self.name,
            )
        return uuid


class OptimoveUploadRecordsOperator(RowSyncOperator[OptimoveHook]):
    """Upload one Optimove record per source row, up to 5000 a request under one ``batch_uuid``; return
    the run report.

    Every request but the last says ``batch_completed: false``; the last goes once all others were
    acknowledged, so Optimove applies the run at once. Records go out whole: every column of the row
    (renamed by ``column_mapping``).

    :param data_connection_uuid: the data connection (typically ``create_data_connection.output``).
    :param identifier_column: the source column holding each record's key.
    :param primary_key: the connection's primary-key field; default: the column's name.
    :param column_mapping: ``{source column: field}`` (or a list). Leaving a source column out removes
        that field from the stored records, so it fails unless ``allow_partial_records=True``.
    :param allow_partial_records: send records without the columns the mapping leaves out (logged).
    :param ttl_seconds: the records' time to live (None: they never expire).
    :param batch_size: records per request, at most 5000.
    :param conn_id: an ``optimove`` connection (default ``optimove_default``).
    Source, ``max_rejected``, ``max_concurrency``: see ``RowSyncOperator``.
    """

    hook_class = OptimoveHook
    default_max_concurrency = "auto"
    operation = "upsert-profiles"
    target_kind = OPTIMOVE_CONNECTION
    target_link = OptimoveConnectionLink
    operator_extra_links = (OptimoveConnectionLink(),)
    template_fields: Sequence[str] = (
        *RowSyncOperator.template_fields,
        "data_connection_uuid",
        "identifier_column",
        "primary_key",
        "column_mapping",
        "allow_partial_records",
        "ttl_seconds",
    )
    template_fields_renderers: ClassVar[dict[str, str]] = {
        **RowSyncOperator.template_fields_renderers,
        "column_mapping": "json",
    }
    ui_color = _UI_COLOR

    def __init__(
        self,
        *,
        data_connection_uuid: str,
        identifier_column: str,
        primary_key: str | None = None,
        column_mapping: Mapping[str, str] | Sequence[str] | None = None,
        allow_partial_records: bool | str = False,
        ttl_seconds: int | None = None,
        batch_size: int | None = None,
        **kwargs: Any,
    ) -> None:
        super().__init__(**kwargs)
        self.data_connection_uuid = data_connection_uuid
        self.identifier_column = identifier_column
        self.primary_key = primary_key
        self.column_mapping = column_mapping
        self.allow_partial_records = allow_partial_records
        self.ttl_seconds = ttl_seconds
        self.batch_size = batch_size
        self.declare_target()

    def target_argument(self) -> Any:
        return self.data_connection_uuid

    def target_name(self) -> str:
        if not self.data_connection_uuid:
            raise AirflowFailException("data_connection_uuid is empty")
        return str(self.data_connection_uuid)

    def written_fields(self, columns: Sequence[str] | None) -> list[tuple[str | None, str]]:
        """Every column, renamed by the mapping: the identifier under the primary key."""
        mapping = self.column_mapping
        key = self.primary_key or (dict(mapping) if isinstance(mapping, Mapping) else {}).get(
            self.identifier_column
        )
        return mapped_fields(columns, self.identifier_column, key or self.identifier_column, mapping)

    def build_writer(self, hook: OptimoveHook) -> OptimoveWriter:
        if not self.data_connection_uuid:
            raise AirflowFailException("data_connection_uuid is empty")
        return OptimoveWriter(
            hook,
            connection_uuid=str(self.data_connection_uuid),
            identifier_column=self.identifier_column,
            primary_key=self.primary_key or None,
            columns=self.column_mapping,
            allow_partial_records=as_bool(self.allow_partial_records, "allow_partial_records"),
            ttl_seconds=self.ttl_seconds,
            batch_size=self.batch_size,
            logger=self.log,
        )


__all__ = ["OptimoveCreateDataConnectionOperator", "OptimoveUploadRecordsOperator"]
