"""Where profiles go, set up so that every step is safe to run again: tables and their attributes.

- DCP: a table (datasource) of the account's service, found by name through every page of the service's
  tables before one is created; a create whose request may have been applied twice is checked and any
  second table of the name archived. A table keyed differently is an error, never a silent match.
- ODP: an object type, found by name (ODP refuses a second one of a name, which means it exists).
- Attributes (DCP) and fields (ODP): only the missing ones are created; one that exists with another
  datatype fails before anything is created, since neither API changes a datatype.

Airflow-free: hooks arrive as duck-typed objects (the methods of ``OptimizelyDcpHook`` and
``OptimizelyOdpHook`` used here), so the rules are tested without Airflow.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Iterator, Sequence
from dataclasses import dataclass
from typing import Any, Protocol

from airflow_provider_optimizely.core.errors import BadRequestError, ConflictError, TerminalError
from airflow_provider_optimizely.core.report import Log
from airflow_provider_optimizely.core.schema_inference import AttributeSpec, Target

DEFAULT_SERVICE_NAME = "Customer profiles"


class TargetSetupError(TerminalError, ValueError):
    """What exists remotely contradicts what the task asks for; running it again would not change that."""


# -- DCP tables ---------------------------------------------------------------------------------------------


class DcpTablesApi(Protocol):
    @property
    def extras(self) -> dict[str, Any]: ...

    def list_services(self) -> Iterable[Any]: ...

    def create_service(self, name: str) -> Any: ...

    def list_tables(self, service_id: int | None = None) -> Iterable[Any]: ...

    def create_table(
        self,
        name: str,
        keyfield_locator_type: Any = ...,
        keyfield_locator_name: str | None = None,
        description: str | None = None,
        service_id: int | None = None,
    ) -> Any: ...

    def delete_table(self, table_id: int) -> None: ...


@dataclass(frozen=True)
class DcpTableSpec:
    name: str
    keyfield_locator_type: str = "uid"
    keyfield_locator_name: str | None = None
    description: str | None = None
    service_name: str = DEFAULT_SERVICE_NAME


def dcp_table(dcp: DcpTablesApi, spec: DcpTableSpec, maybe_applied_twice: Callable[[], int], log: Log) -> int:
    """The id of the live DCP table named ``spec.name``, created if there is none.

    ``maybe_applied_twice`` reads the hook's counter of retries that may have been applied: when the
    create request raised it, a second table of the name may exist, and the oldest is kept.
    """
    if not spec.name:
        raise TargetSetupError("table_name is empty")
    service_id = dcp_service_id(dcp, spec.service_name, log)
    existing = next(_dcp_tables_named(dcp, service_id, spec.name), None)
    if existing is not None:
        _check_keyfield(existing, spec)
        log.info("DCP table %r exists (id %s): using it", spec.name, existing.id)
        return int(existing.id)
    before = maybe_applied_twice()
    table = dcp.create_table(
        spec.name,
        keyfield_locator_type=spec.keyfield_locator_type,
        keyfield_locator_name=spec.keyfield_locator_name or None,
        description=spec.description,
        service_id=service_id,
    )
    log.info("created DCP table %r (id %s) in service %s", spec.name, table.id, service_id)
    if maybe_applied_twice() > before:
        return _keep_oldest_dcp_table(dcp, service_id, spec.name, table, log)
    return int(table.id)


def dcp_service_id(dcp: DcpTablesApi, service_name: str, log: Log) -> int:
    """The connection's ``dcp_service_id``, else the account's one live service, else a new one."""
    configured = dcp.extras.get("dcp_service_id")
    if configured not in (None, ""):
        return int(configured)
    live = next((s for s in dcp.list_services() if not s.archived), None)
    if live is not None:
        return int(live.id)
    log.info("the account has no DCP service: creating one named %r", service_name)
    try:
        return int(dcp.create_service(service_name).id)
    except ConflictError:
        # One service per account: an earlier attempt of this very request (or another task) made it.
        live = next((s for s in dcp.list_services() if not s.archived), None)
        if live is None:
            raise
        return int(live.id)


def _check_keyfield(table: Any, spec: DcpTableSpec) -> None:
    wanted = (spec.keyfield_locator_type, spec.keyfield_locator_name or "")
    found = (table.keyfield_locator_type, table.keyfield_locator_name or "")
    if wanted != found and not (wanted[0] == found[0] == "uid"):
        raise TargetSetupError(
            f"DCP table {table.name!r} (id {table.id}) exists keyed by {found[0]} {found[1]!r}, "
            f"not {wanted[0]} {wanted[1]!r} as asked: change the table or the task"
        )


def _keep_oldest_dcp_table(dcp: DcpTablesApi, service_id: int, name: str, created: Any, log: Log) -> int:
    """The create may have been applied twice: archive any second table of the name."""
    same_name = sorted(_dcp_tables_named(dcp, service_id, name), key=lambda t: t.id)
    if not same_name:
        return int(created.id)
    keep, *extra = same_name
    for duplicate in extra:
        log.warning(
            "a retried create made a second DCP table %r (id %s): archiving it, keeping id %s",
            name,
            duplicate.id,
            keep.id,
        )
        dcp.delete_table(duplicate.id)
    return int(keep.id)


def _dcp_tables_named(dcp: DcpTablesApi, service_id: int, name: str) -> Iterator[Any]:
    """Live tables of that name, reading pages only as far as the caller asks."""
    return (t for t in dcp.list_tables(service_id) if t.name == name and not t.archived)


# -- ODP object types ----------------------------------------------------------------------------------------


class OdpSchemaApi(Protocol):
    def get_schema_object(self, object_type: str) -> Any: ...

    def create_schema_object(
        self, object_type: str, display_name: str, description: str | None = None
    ) -> Any: ...

    def create_schema_field(
        self, object_type: str, name: str, display_name: str, type: Any, description: str | None = None
    ) -> Any: ...


def odp_object_type(
    odp: OdpSchemaApi, name: str, display_name: str | None, description: str | None, log: Log
) -> str:
    """The ODP object type ``name``, created if there is none."""
    if not name:
        raise TargetSetupError("object_type is empty")
    if odp.get_schema_object(name) is not None:
        log.info("ODP object type %r exists: using it", name)
        return name
    try:
        odp.create_schema_object(name, display_name or name.replace("_", " ").title(), description)
    except BadRequestError:
        # ODP refuses a second object of the same name with a 400: a retried request, or a race.
        if odp.get_schema_object(name) is None:
            raise
        log.info("ODP object type %r was created meanwhile: using it", name)
        return name
    log.info("created ODP object type %r", name)
    return name


# -- attributes and fields -----------------------------------------------------------------------------------


class AttributeRegistry(Protocol):
    """One table's attributes in one API: what exists, and creating one."""

    target: Target
    where: str

    def existing(self) -> dict[str, AttributeSpec]: ...

    def create(self, spec: AttributeSpec) -> None: ...


@dataclass(frozen=True)
class Registration:
    created: list[AttributeSpec]
    existing: list[AttributeSpec]


def register_missing(registry: AttributeRegistry, wanted: Sequence[AttributeSpec], log: Log) -> Registration:
    """Create the attributes of ``wanted`` the table lacks; fail before creating any if one exists with
    another datatype. An attribute that appears meanwhile (a retried request, a race) counts as existing."""
    existing = registry.existing()
    conflicts = [
        f"{spec.name}: registered as {existing[spec.name].describe_type()}, asked {spec.describe_type()}"
        for spec in wanted
        if spec.name in existing and not spec.same_type_as(existing[spec.name])
    ]
    if conflicts:
        raise TargetSetupError(
            f"{registry.where} has attributes of another datatype ({'; '.join(conflicts)}); a datatype "
            "can't change: archive the attribute and register it anew, or change the task"
        )
    created, already = [], [spec for spec in wanted if spec.name in existing]
    for spec in (s for s in wanted if s.name not in existing):
        try:
            registry.create(spec)
        except (ConflictError, BadRequestError):
            # DCP answers an attribute that exists with a 409, ODP a field with a 400.
            found = registry.existing().get(spec.name)
            if found is None:
                raise
            if not found.same_type_as(spec):
                raise TargetSetupError(
                    f"{registry.where}: attribute {spec.name!r} appeared meanwhile as "
                    f"{found.describe_type()}, not {spec.describe_type()}"
                ) from None
            already.append(spec)
            continue
        created.append(spec)
    log.info(
        "%s: created %d attribute(s) %s; %d existed already",
        registry.where,
        len(created),
        [s.name for s in created],
        len(already),
    )
    return Registration(created, already)


class DcpAttributes:
    """The attributes of a DCP table. An archived attribute can't be read or written, and its name may be
    registered anew, so it does not count as existing."""

    target: Target = "dcp"

    def __init__(self, dcp: Any, table_id: int) -> None:
        self.dcp = dcp
        self.table_id = table_id
        self.where = f"DCP table {table_id}"

    def existing(self) -> dict[str, AttributeSpec]:
        return {
            a.name: AttributeSpec(a.name, str(a.datatype), a.format or None)
            for a in self.dcp.list_attributes(self.table_id)
            if not a.archived
        }

    def create(self, spec: AttributeSpec) -> None:
        self.dcp.create_attribute(
            self.table_id, spec.name, spec.datatype, description=spec.description, format=spec.format
        )


class OdpFields:
    """The fields of an ODP object type."""

    target: Target = "odp"

    def __init__(self, odp: OdpSchemaApi, object_type: str) -> None:
        self.odp = odp
        self.object_type = object_type
        self.where = f"ODP object type {object_type!r}"

    def existing(self) -> dict[str, AttributeSpec]:
        schema = self.odp.get_schema_object(self.object_type)
        if schema is None:
            raise TargetSetupError(
                f"there is no {self.where}: create it first (OptimizelyOdpCreateObjectTypeOperator)"
            )
        return {f.name: AttributeSpec(f.name, str(f.type)) for f in schema.fields}

    def create(self, spec: AttributeSpec) -> None:
        display_name = spec.display_name or spec.name.replace("_", " ").title()
        self.odp.create_schema_field(
            self.object_type, spec.name, display_name, spec.datatype, description=spec.description
        )
