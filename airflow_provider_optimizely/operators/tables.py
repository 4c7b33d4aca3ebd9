"""Set up where profiles go: create a table, register its attributes. Both are safe to run again.

- ``OptimizelyCreateTableOperator``: a DCP table, an ODP object type, or an Optimove data connection.
- ``OptimizelyRegisterAttributesOperator``: DCP attributes or ODP fields, listed or inferred from a
  warehouse table's column types.

The connection's type picks the API (``_dispatch.hook_for``). Nothing here reads a connection or calls an
API before ``execute``.
"""

from __future__ import annotations

from collections.abc import Iterator, Mapping, Sequence
from functools import cached_property
from typing import TYPE_CHECKING, Any

from airflow.sdk import BaseHook, BaseOperator, Variable
from airflow.sdk.exceptions import AirflowException, AirflowFailException

from airflow_provider_optimizely.core.errors import BadRequestError, ConflictError
from airflow_provider_optimizely.core.schema_inference import (
    AttributeSpec,
    Column,
    Target,
    infer_attributes,
    parse_attributes,
)
from airflow_provider_optimizely.hooks.dcp import OptimizelyDcpHook
from airflow_provider_optimizely.hooks.odp import OptimizelyOdpHook
from airflow_provider_optimizely.hooks.optimove import OptimoveHook
from airflow_provider_optimizely.operators._dispatch import CREATE_TABLE, REGISTER_ATTRIBUTES, hook_for

if TYPE_CHECKING:
    from airflow.sdk import Context

    from airflow_provider_optimizely.hooks.base import OptimizelyBaseHook
    from airflow_provider_optimizely.models.dcp import DcpTable

DEFAULT_SERVICE_NAME = "Customer profiles"
OPTIMOVE_MEMORY_PREFIX = "optimizely_provider.optimove_connection"


class TableSetupError(AirflowFailException):
    """What exists remotely contradicts what the task asks for; a retry would not change that."""


def _requests_made(hook: OptimizelyBaseHook) -> dict[str, float]:
    return hook.client.stats.as_dict()


def _retries_after_send(hook: OptimizelyBaseHook) -> int:
    return int(hook.client.stats.maybe_applied_twice)


def optimove_memory_key(conn_id: str, name: str) -> str:
    """The Airflow Variable that remembers the data connection created for ``name`` on ``conn_id``."""
    return f"{OPTIMOVE_MEMORY_PREFIX}.{conn_id}.{name}"


class OptimizelyCreateTableOperator(BaseOperator):
    """Create a table unless one of that name exists; return its id (the XCom value).

    - DCP (``optimizely``): a table (datasource) of the DCP service, keyed by ``keyfield_locator_type``
      (``uid``, ``cookie``, ``query parameter``, ``js_variable``) and ``keyfield_locator_name``. The
      service is the connection extra ``dcp_service_id``, else the account's one service; an account
      with none gets one named ``service_name``. Every page of the service's tables is searched for a
      live table of that name. Returns the table's id (an int). An existing table keyed differently is
      an error, not a silent match.
    - ODP (``optimizely_odp``): an object type (``/schema/objects/{table_name}``, lower-case), displayed
      as ``display_name``. Returns the object type's name.
    - Optimove (``optimove``): a data connection with ``primary_key``. Returns its uuid. The API has no
      way to list connections, so the uuid created for ``table_name`` is remembered in the Airflow
      Variable ``optimizely_provider.optimove_connection.<conn_id>.<table_name>``: a retry or a later
      run of any DAG on this Airflow reuses it. A connection created outside this Airflow, or after that
      Variable is deleted, can't be found, and a create request that timed out after it was sent may
      have made a second connection upstream (the task log says so when it happens).

    A DCP create whose request may have been applied twice (a timeout after sending) is checked: if two
    tables of the name now exist, the newer ones are archived and the oldest is kept.
    """

    template_fields: Sequence[str] = (
        "conn_id",
        "table_name",
        "description",
        "keyfield_locator_type",
        "keyfield_locator_name",
        "display_name",
        "primary_key",
        "service_name",
    )
    ui_color = "#d6e9ff"

    def __init__(
        self,
        *,
        table_name: str,
        conn_id: str = "optimizely_default",
        description: str | None = None,
        keyfield_locator_type: str = "uid",
        keyfield_locator_name: str | None = None,
        display_name: str | None = None,
        primary_key: str | None = None,
        service_name: str = DEFAULT_SERVICE_NAME,
        **kwargs: Any,
    ) -> None:
        super().__init__(**kwargs)
        self.conn_id = conn_id
        self.table_name = table_name
        self.description = description
        self.keyfield_locator_type = keyfield_locator_type
        self.keyfield_locator_name = keyfield_locator_name
        self.display_name = display_name
        self.primary_key = primary_key
        self.service_name = service_name

    @cached_property
    def hook(self) -> OptimizelyBaseHook:
        return hook_for(self.conn_id, CREATE_TABLE)

    def execute(self, context: Context) -> int | str:
        if not self.table_name:
            raise TableSetupError("table_name is empty")
        hook = self.hook
        if isinstance(hook, OptimizelyDcpHook):
            table_id: int | str = self._dcp_table(hook)
        elif isinstance(hook, OptimizelyOdpHook):
            table_id = self._odp_object_type(hook)
        elif isinstance(hook, OptimoveHook):
            table_id = self._optimove_connection(hook)
        else:  # _dispatch only grants create-table to the three above
            raise AirflowException(f"create-table has no implementation for {type(hook).__name__}")
        self.log.info("requests: %s", _requests_made(hook))
        return table_id

    # -- DCP --------------------------------------------------------------------------------------------

    def _dcp_table(self, hook: OptimizelyDcpHook) -> int:
        service_id = self._dcp_service_id(hook)
        existing = next(_dcp_tables_named(hook, service_id, self.table_name), None)
        if existing is not None:
            self._check_dcp_keyfield(existing)
            self.log.info("DCP table %r exists (id %s): using it", self.table_name, existing.id)
            return existing.id
        before = _retries_after_send(hook)
        table = hook.create_table(
            self.table_name,
            keyfield_locator_type=self.keyfield_locator_type,  # type: ignore[arg-type]
            keyfield_locator_name=self.keyfield_locator_name or None,
            description=self.description,
            service_id=service_id,
        )
        self.log.info("created DCP table %r (id %s) in service %s", self.table_name, table.id, service_id)
        if _retries_after_send(hook) > before:
            return self._keep_oldest_dcp_table(hook, service_id, table)
        return table.id

    def _dcp_service_id(self, hook: OptimizelyDcpHook) -> int:
        configured = hook.extras.get("dcp_service_id")
        if configured not in (None, ""):
            return int(configured)
        live = next((s for s in hook.list_services() if not s.archived), None)
        if live is not None:
            return live.id
        self.log.info("the account has no DCP service: creating one named %r", self.service_name)
        try:
            return hook.create_service(self.service_name).id
        except ConflictError:
            # One service per account: an earlier attempt of this very request (or another task) made it.
            live = next((s for s in hook.list_services() if not s.archived), None)
            if live is None:
                raise
            return live.id

    def _check_dcp_keyfield(self, table: DcpTable) -> None:
        wanted = (self.keyfield_locator_type, self.keyfield_locator_name or "")
        found = (table.keyfield_locator_type, table.keyfield_locator_name or "")
        if wanted != found and not (wanted[0] == found[0] == "uid"):
            raise TableSetupError(
                f"DCP table {table.name!r} (id {table.id}) exists keyed by {found[0]} {found[1]!r}, "
                f"not {wanted[0]} {wanted[1]!r} as asked: change the table or the task"
            )

    def _keep_oldest_dcp_table(self, hook: OptimizelyDcpHook, service_id: int, created: DcpTable) -> int:
        """The create may have been applied twice: archive any second table of the name."""
        same_name = sorted(_dcp_tables_named(hook, service_id, self.table_name), key=lambda t: t.id)
        if not same_name:
            return created.id
        keep, *extra = same_name
        for duplicate in extra:
            self.log.warning(
                "a retried create made a second DCP table %r (id %s): archiving it, keeping id %s",
                self.table_name,
                duplicate.id,
                keep.id,
            )
            hook.delete_table(duplicate.id)
        return keep.id

    # -- ODP --------------------------------------------------------------------------------------------

    def _odp_object_type(self, hook: OptimizelyOdpHook) -> str:
        name = self.table_name
        if hook.get_schema_object(name) is not None:
            self.log.info("ODP object type %r exists: using it", name)
            return name
        display_name = self.display_name or name.replace("_", " ").title()
        try:
            hook.create_schema_object(name, display_name, self.description)
        except BadRequestError:
            # ODP refuses a second object of the same name with a 400: a retried request, or a race.
            if hook.get_schema_object(name) is None:
                raise
            self.log.info("ODP object type %r was created meanwhile: using it", name)
            return name
        self.log.info("created ODP object type %r", name)
        return name

    # -- Optimove ---------------------------------------------------------------------------------------

    def _optimove_connection(self, hook: OptimoveHook) -> str:
        key = optimove_memory_key(self.conn_id, self.table_name)
        remembered = Variable.get(key, default=None, deserialize_json=True)
        if remembered:
            if self.primary_key and remembered.get("primary_key") != self.primary_key:
                raise TableSetupError(
                    f"Optimove data connection {self.table_name!r} ({remembered['uuid']}) was created with "
                    f"primary_key {remembered.get('primary_key')!r}, not {self.primary_key!r}"
                )
            self.log.info(
                "Optimove data connection %r was created earlier (%s, remembered in Variable %s): using it",
                self.table_name,
                remembered["uuid"],
                key,
            )
            return str(remembered["uuid"])
        if not self.primary_key:
            raise TableSetupError("an Optimove data connection needs primary_key")
        before = _retries_after_send(hook)
        created = hook.create_connection(self.table_name, self.primary_key, self.description or "")
        uuid = created.data_connection_uuid
        Variable.set(
            key,
            {"uuid": uuid, "primary_key": self.primary_key},
            description="Optimove data connection created by OptimizelyCreateTableOperator",
            serialize_json=True,
        )
        self.log.info(
            "created Optimove data connection %r: %s (remembered in Variable %s)", self.table_name, uuid, key
        )
        if _retries_after_send(hook) > before:
            self.log.warning(
                "the create request was retried after it may have been applied: Optimove may now hold a "
                "second data connection named %r; it can't be listed through the API, check the Optimove UI",
                self.table_name,
            )
        return uuid


def _dcp_tables_named(hook: OptimizelyDcpHook, service_id: int, name: str) -> Iterator[DcpTable]:
    """Live tables of that name, reading pages only as far as the caller asks."""
    return (t for t in hook.list_tables(service_id) if t.name == name and not t.archived)


class OptimizelyRegisterAttributesOperator(BaseOperator):
    """Register the attributes a table lacks; return what it created and what already existed.

    Either ``attributes`` lists them (DCP: ``{name, datatype, format?, description?}``, ``datatype`` one
    of string/bool/long/double/datetime, datetime with ``format`` yyyy-mm-dd, yyyy-mm-ddThh:mm:ssZ or
    epoch; ODP: ``{name, type, display_name?, description?}``, ``type`` one of
    string/number/boolean/timestamp), or ``source_table`` names a warehouse table (``schema.table``)
    on ``sql_conn_id`` (any Airflow SQL connection) whose column types decide: integers become
    long/number, floats and numerics double/number, booleans bool/boolean, dates datetime yyyy-mm-dd,
    timestamps datetime yyyy-mm-ddThh:mm:ssZ / timestamp, text string. ``include``/``exclude`` pick
    columns, ``overrides`` (``{column: datatype or {datatype, format}}``) decide for a column, and
    ``identifier_column`` (the profile key) is never registered.

    ``table_id`` is the DCP table id or the ODP object type, typically ``create_table.output``.
    An existing attribute of another datatype or format fails the task before anything is created:
    DCP can't change an attribute's datatype (archive it and create it anew).
    """

    template_fields: Sequence[str] = (
        "conn_id",
        "table_id",
        "attributes",
        "sql_conn_id",
        "source_table",
        "include",
        "exclude",
        "overrides",
        "identifier_column",
    )
    ui_color = "#d6e9ff"

    def __init__(
        self,
        *,
        table_id: int | str,
        conn_id: str = "optimizely_default",
        attributes: Sequence[Mapping[str, Any]] | None = None,
        sql_conn_id: str | None = None,
        source_table: str | None = None,
        include: Sequence[str] | None = None,
        exclude: Sequence[str] = (),
        overrides: Mapping[str, str | Mapping[str, Any]] | None = None,
        identifier_column: str | None = None,
        **kwargs: Any,
    ) -> None:
        super().__init__(**kwargs)
        if (attributes is None) == (source_table is None):
            raise ValueError("give either attributes or source_table (with sql_conn_id), not both or neither")
        if source_table is not None and not sql_conn_id:
            raise ValueError("source_table needs sql_conn_id, the warehouse connection to read its columns")
        self.conn_id = conn_id
        self.table_id = table_id
        self.attributes = attributes
        self.sql_conn_id = sql_conn_id
        self.source_table = source_table
        self.include = include
        self.exclude = exclude
        self.overrides = overrides
        self.identifier_column = identifier_column

    @cached_property
    def hook(self) -> OptimizelyBaseHook:
        return hook_for(self.conn_id, REGISTER_ATTRIBUTES)

    def execute(self, context: Context) -> dict[str, Any]:
        hook = self.hook
        if isinstance(hook, OptimizelyDcpHook):
            registry: _AttributeRegistry = _DcpAttributes(hook, _dcp_table_id(self.table_id))
        elif isinstance(hook, OptimizelyOdpHook):
            registry = _OdpFields(hook, str(self.table_id))
        else:  # _dispatch only grants register-attributes to the two above
            raise AirflowException(f"register-attributes has no implementation for {type(hook).__name__}")
        wanted = self._wanted(registry.target)
        existing = registry.existing()
        conflicts = [
            f"{spec.name}: registered as {existing[spec.name].describe_type()}, asked {spec.describe_type()}"
            for spec in wanted
            if spec.name in existing and not spec.same_type_as(existing[spec.name])
        ]
        if conflicts:
            raise TableSetupError(
                f"{registry.where} has attributes of another datatype ({'; '.join(conflicts)}); a datatype "
                "can't change: archive the attribute and register it anew, or change the task"
            )
        created, already = [], [spec for spec in wanted if spec.name in existing]
        for spec in (s for s in wanted if s.name not in existing):
            if registry.create(spec):
                created.append(spec)
            else:
                already.append(spec)
        self.log.info(
            "%s: created %d attribute(s) %s; %d existed already",
            registry.where,
            len(created),
            [s.name for s in created],
            len(already),
        )
        return {
            "table_id": self.table_id,
            "created": [s.as_dict() for s in created],
            "existing": [s.as_dict() for s in already],
            "requests": _requests_made(hook),
        }

    def _wanted(self, target: Target) -> list[AttributeSpec]:
        try:
            if self.attributes is not None:
                return parse_attributes(self.attributes, target)
            return infer_attributes(
                warehouse_columns(str(self.sql_conn_id), str(self.source_table)),
                target,
                include=self.include,
                exclude=self.exclude or (),
                overrides=self.overrides,
                identifier_column=self.identifier_column,
            )
        except ValueError as exc:
            raise TableSetupError(str(exc)) from None


def _dcp_table_id(value: Any) -> int:
    try:
        return int(value)
    except (TypeError, ValueError):
        raise TableSetupError(f"a DCP table id is a number, got {value!r}") from None


class _AttributeRegistry:
    """One table's attributes in one API: what exists, and creating one."""

    target: Target
    where: str

    def existing(self) -> dict[str, AttributeSpec]:
        raise NotImplementedError

    def create(self, spec: AttributeSpec) -> bool:
        """Create ``spec``; False when it turned out to exist already (a retried request or a race)."""
        raise NotImplementedError

    def _created_meanwhile(self, spec: AttributeSpec) -> bool:
        found = self.existing().get(spec.name)
        if found is None:
            return False
        if not found.same_type_as(spec):
            raise TableSetupError(
                f"{self.where}: attribute {spec.name!r} appeared meanwhile as {found.describe_type()}, "
                f"not {spec.describe_type()}"
            )
        return True


class _DcpAttributes(_AttributeRegistry):
    target: Target = "dcp"

    def __init__(self, hook: OptimizelyDcpHook, table_id: int) -> None:
        self.hook = hook
        self.table_id = table_id
        self.where = f"DCP table {table_id}"

    def existing(self) -> dict[str, AttributeSpec]:
        # An archived attribute can't be read or written, and its name may be registered anew.
        return {
            a.name: AttributeSpec(a.name, str(a.datatype), a.format or None)
            for a in self.hook.list_attributes(self.table_id)
            if not a.archived
        }

    def create(self, spec: AttributeSpec) -> bool:
        try:
            self.hook.create_attribute(
                self.table_id,
                spec.name,
                spec.datatype,  # type: ignore[arg-type]
                description=spec.description,
                format=spec.format,  # type: ignore[arg-type]
            )
        except ConflictError:
            if self._created_meanwhile(spec):
                return False
            raise
        return True


class _OdpFields(_AttributeRegistry):
    target: Target = "odp"

    def __init__(self, hook: OptimizelyOdpHook, object_type: str) -> None:
        self.hook = hook
        self.object_type = object_type
        self.where = f"ODP object type {object_type!r}"

    def existing(self) -> dict[str, AttributeSpec]:
        schema = self.hook.get_schema_object(self.object_type)
        if schema is None:
            raise TableSetupError(
                f"there is no {self.where}: create it first (OptimizelyCreateTableOperator)"
            )
        return {f.name: AttributeSpec(f.name, str(f.type)) for f in schema.fields}

    def create(self, spec: AttributeSpec) -> bool:
        display_name = spec.display_name or spec.name.replace("_", " ").title()
        try:
            self.hook.create_schema_field(
                self.object_type,
                spec.name,
                display_name,
                spec.datatype,  # type: ignore[arg-type]
                description=spec.description,
            )
        except BadRequestError:
            # ODP answers a field that exists with a 400 (not 409).
            if self._created_meanwhile(spec):
                return False
            raise
        return True


def warehouse_columns(sql_conn_id: str, table: str) -> list[Column]:
    """A warehouse table's columns and their type names, through any Airflow SQL connection.

    SQLAlchemy's inspector is the one way that reads the same on PostgreSQL, SQLite, MySQL, Snowflake...:
    ``information_schema`` is missing on SQLite and ``cursor.description`` type codes differ by driver.
    """
    from airflow.providers.common.sql.hooks.sql import DbApiHook
    from sqlalchemy import inspect
    from sqlalchemy.exc import NoSuchTableError

    sql_hook = BaseHook.get_connection(sql_conn_id).get_hook()
    if not isinstance(sql_hook, DbApiHook):
        raise TableSetupError(
            f"connection {sql_conn_id!r} is not a SQL connection (its hook is no DbApiHook)"
        )
    schema, _, name = table.rpartition(".")
    engine = sql_hook.get_sqlalchemy_engine()
    try:
        columns = inspect(engine).get_columns(name, schema=schema or None)
    except NoSuchTableError:
        raise TableSetupError(f"connection {sql_conn_id!r} has no table {table!r}") from None
    finally:
        engine.dispose()
    if not columns:
        raise TableSetupError(f"connection {sql_conn_id!r} has no table {table!r} (or it has no columns)")
    return [Column(str(c["name"]), _type_name(c["type"], engine.dialect)) for c in columns]


def _type_name(sql_type: Any, dialect: Any) -> str:
    try:
        return str(sql_type.compile(dialect=dialect))
    except Exception:  # a type the dialect can't render still has a class name worth classifying
        return type(sql_type).__name__
