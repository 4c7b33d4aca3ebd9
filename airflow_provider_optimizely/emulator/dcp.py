"""The emulated DCP v1 REST API (docs/api-contract.md §4.1, §4.2, §4.6), routes relative to
``/dcp/experiment/v1``.

Readings of the contract, where docs/api-contract.md leaves a choice:

- **Auth.** ``dcp_auth``: a classic ``Token:``, or an unexpired OAuth access token as ``Bearer``; anything
  else 401 (v2 body).
- **Bodies.** A body must be a JSON object with only the fields the route documents; an unknown or
  read-only field answers 400 naming it, so a client that sends a typo learns it here, not in production.
- **One service per account.** A second ``POST dcp_services`` answers **409** naming the existing one.
  Creating the service also creates its Optimizely table (``is_optimizely=true``, cookie
  ``optimizelyEndUserId``), the table aliases point from.
- **Archiving.** ``DELETE`` on a table or an attribute archives it (204). An archived table is still
  listed and readable (``archived: true``), can't be changed (400), and a second DELETE answers 204. An
  archived attribute "can't be read or written" (docs/api-contract.md §4.2): ``GET`` of it answers 404,
  ``PUT`` and ``DELETE`` 400, its profile values are neither read nor written; lists still show it with
  ``archived: true``, so a client that forgets to filter meets it. An attribute name is unique among the
  table's live attributes, so
  "archive and create anew" works; the name ``customerId`` (any case) is taken by the upload key column.
  The Optimizely table can't be deleted.
- **PUT** changes only: a service's ``name``; a table's ``name``, ``description``,
  ``keyfield_locator_type``/``keyfield_locator_name``; an attribute's ``description``. Read-only fields
  may be sent back unchanged; a different value answers 400.
- Lists are paginated (docs/api-contract.md §3) and ordered by id; Upload History newest first.
"""

from __future__ import annotations

import re
from typing import Any

from fastapi import APIRouter, Depends, Request, Response
from fastapi.responses import JSONResponse

from airflow_provider_optimizely.emulator._request_body import read_json_object
from airflow_provider_optimizely.emulator.common import ApiError, EmulatorSettings, Received, paginate
from airflow_provider_optimizely.emulator.dcp_auth import token_auth
from airflow_provider_optimizely.emulator.dcp_state import DcpState, now_iso
from airflow_provider_optimizely.emulator.dcp_values import DATATYPES, DATETIME_FORMATS

KEYFIELD_LOCATOR_TYPES = ("cookie", "query parameter", "js_variable", "uid")
KEYFIELD_LOCATOR_NAME = re.compile(r"^[a-zA-Z_][a-zA-Z_0-9$]*$")


async def json_object(
    request: Request, *, required: tuple[str, ...] = (), optional: tuple[str, ...] = ()
) -> dict[str, Any]:
    """The body as a JSON object holding the ``required`` fields and perhaps some ``optional`` ones."""
    body = await read_json_object(request)
    unknown = sorted(set(body) - set(required) - set(optional))
    if unknown:
        raise ApiError(400, f"unknown or read-only field(s): {', '.join(unknown)}")
    missing = [name for name in required if name not in body]
    if missing:
        raise ApiError(400, f"missing required field(s): {', '.join(missing)}")
    return body


def check_put_fields(body: dict[str, Any], current: dict[str, Any], changeable: tuple[str, ...]) -> None:
    """A PUT names only fields the resource has; it may send read-only ones back, but only with their
    current value."""
    unknown = sorted(set(body) - set(current))
    if unknown:
        raise ApiError(400, f"unknown field(s): {', '.join(unknown)}")
    changed = sorted(k for k, v in body.items() if k not in changeable and k in current and current[k] != v)
    if changed:
        raise ApiError(400, f"field(s) that can't change: {', '.join(changed)}")


def text_field(body: dict[str, Any], name: str, *, required: bool = True) -> str:
    value = body.get(name)
    if value is None and not required:
        return ""
    if not isinstance(value, str) or (required and not value.strip()):
        raise ApiError(400, f"{name} must be a non-empty string" if required else f"{name} must be a string")
    return value


def parse_id(text: str, what: str) -> int:
    if not text.isdigit():
        raise ApiError(404, f"no {what} with id {text!r}")
    return int(text)


def check_keyfield(locator_type: Any, locator_name: Any) -> None:
    if locator_type not in KEYFIELD_LOCATOR_TYPES:
        raise ApiError(400, f"keyfield_locator_type must be one of {', '.join(KEYFIELD_LOCATOR_TYPES)}")
    if locator_type == "uid":
        if locator_name not in (None, "") and not (
            isinstance(locator_name, str) and KEYFIELD_LOCATOR_NAME.match(locator_name)
        ):
            raise ApiError(400, "keyfield_locator_name must match ^[a-zA-Z_][a-zA-Z_0-9$]*$")
        return
    if not isinstance(locator_name, str) or not KEYFIELD_LOCATOR_NAME.match(locator_name):
        raise ApiError(
            400,
            f"{locator_type!r} needs a keyfield_locator_name matching ^[a-zA-Z_][a-zA-Z_0-9$]*$",
        )


def check_datatype(datatype: Any, fmt: Any) -> None:
    if datatype not in DATATYPES:
        raise ApiError(400, f"datatype must be one of {', '.join(DATATYPES)}")
    if datatype == "datetime":
        if fmt not in DATETIME_FORMATS:
            raise ApiError(400, f"a datetime attribute needs format, one of {', '.join(DATETIME_FORMATS)}")
    elif fmt not in (None, ""):
        raise ApiError(400, "format applies to datetime attributes only")


def created(body: dict[str, Any]) -> JSONResponse:
    return JSONResponse(body, status_code=201)


def accepted(body: dict[str, Any]) -> JSONResponse:
    return JSONResponse(body, status_code=202)


def create_router(state: DcpState, settings: EmulatorSettings, received: Received) -> APIRouter:
    """Services, tables, attributes and Upload History; ``received`` is counted by the middleware."""
    router = APIRouter(dependencies=[Depends(token_auth(state, settings))])

    def service_of(service_id: str) -> dict[str, Any]:
        service = state.services.get(parse_id(service_id, "DCP service"))
        if service is None:
            raise ApiError(404, f"no DCP service with id {service_id}")
        return service

    def table_of(table_id: str) -> dict[str, Any]:
        table = state.tables.get(parse_id(table_id, "table"))
        if table is None:
            raise ApiError(404, f"no table (dcp_datasource) with id {table_id}")
        return table

    def attribute_of(attribute_id: str) -> dict[str, Any]:
        attribute = state.attributes.get(parse_id(attribute_id, "attribute"))
        if attribute is None:
            raise ApiError(404, f"no attribute with id {attribute_id}")
        return attribute

    def live_attribute(attribute_id: str) -> dict[str, Any]:
        attribute = attribute_of(attribute_id)
        if attribute["archived"]:
            raise ApiError(400, f"attribute {attribute['id']} is archived: it can't be written")
        return attribute

    # --- services ------------------------------------------------------------------------------

    @router.get("/dcp_services")
    def list_services(request: Request) -> JSONResponse:
        with state.lock:
            return paginate(
                request, [dict(s) for s in sorted(state.services.values(), key=lambda s: s["id"])]
            )

    @router.post("/dcp_services")
    async def create_service(request: Request) -> JSONResponse:
        body = await json_object(request, required=("name",))
        name = text_field(body, "name")
        with state.lock:
            if state.services:
                existing = next(iter(state.services))
                raise ApiError(
                    409, f"this account already has a DCP service (id {existing}): one per account"
                )
            return created(state.create_service(name))

    @router.get("/dcp_services/{service_id}")
    def get_service(service_id: str) -> dict[str, Any]:
        with state.lock:
            return dict(service_of(service_id))

    @router.put("/dcp_services/{service_id}")
    async def update_service(service_id: str, request: Request) -> JSONResponse:
        body = await read_json_object(request)
        with state.lock:
            service = service_of(service_id)
            check_put_fields(body, service, ("name",))
            if "name" in body:
                service["name"] = text_field(body, "name")
                service["last_modified"] = now_iso()
            return accepted(dict(service))

    # --- tables --------------------------------------------------------------------------------

    @router.get("/dcp_services/{service_id}/dcp_datasources")
    def list_tables(service_id: str, request: Request) -> JSONResponse:
        with state.lock:
            service = service_of(service_id)
            ids = sorted(t["id"] for t in state.tables.values() if t["dcp_service_id"] == service["id"])
            return paginate(request, [state.table_view(i) for i in ids])

    @router.post("/dcp_services/{service_id}/dcp_datasources")
    async def create_table(service_id: str, request: Request) -> JSONResponse:
        body = await json_object(
            request,
            required=("name", "keyfield_locator_type"),
            optional=("keyfield_locator_name", "description"),
        )
        text_field(body, "name")
        text_field(body, "description", required=False)
        check_keyfield(body["keyfield_locator_type"], body.get("keyfield_locator_name"))
        with state.lock:
            service = service_of(service_id)
            table = state.create_table(service["id"], body)
            return created(state.table_view(table["id"]))

    @router.get("/dcp_datasources/{table_id}")
    def get_table(table_id: str) -> dict[str, Any]:
        with state.lock:
            return state.table_view(table_of(table_id)["id"])

    @router.put("/dcp_datasources/{table_id}")
    async def update_table(table_id: str, request: Request) -> JSONResponse:
        body = await read_json_object(request)
        changeable = ("name", "description", "keyfield_locator_type", "keyfield_locator_name")
        with state.lock:
            table = table_of(table_id)
            view = state.table_view(table["id"])
            # A body copied from a GET carries the attribute list; attributes change through their own routes.
            check_put_fields({k: v for k, v in body.items() if k != "attributes"}, view, changeable)
            if table["archived"]:
                raise ApiError(400, f"table {table['id']} is archived and can't change")
            if table["is_optimizely"] and any(k in body and body[k] != table[k] for k in changeable[2:]):
                raise ApiError(400, "the Optimizely table's key field can't change")
            if "name" in body:
                text_field(body, "name")
            if "description" in body:
                text_field(body, "description", required=False)
            locator_type = body.get("keyfield_locator_type", table["keyfield_locator_type"])
            locator_name = body.get("keyfield_locator_name", table["keyfield_locator_name"])
            check_keyfield(locator_type, locator_name)
            for key in changeable:
                if key in body:
                    table[key] = body[key] if body[key] is not None else ""
            table["last_modified"] = now_iso()
            return accepted(state.table_view(table["id"]))

    @router.delete("/dcp_datasources/{table_id}")
    def delete_table(table_id: str) -> Response:
        with state.lock:
            table = table_of(table_id)
            if table["is_optimizely"]:
                raise ApiError(400, "the Optimizely table can't be deleted")
            if not table["archived"]:
                table["archived"] = True
                table["last_modified"] = now_iso()
        return Response(status_code=204)

    # --- attributes ----------------------------------------------------------------------------

    @router.get("/dcp_datasources/{table_id}/dcp_datasource_attributes")
    def list_attributes(table_id: str, request: Request) -> JSONResponse:
        with state.lock:
            table = table_of(table_id)
            found = sorted(
                (dict(a) for a in state.attributes.values() if a["dcp_datasource_id"] == table["id"]),
                key=lambda a: a["id"],
            )
            return paginate(request, found)

    @router.post("/dcp_datasources/{table_id}/dcp_datasource_attributes")
    async def create_attribute(table_id: str, request: Request) -> JSONResponse:
        body = await json_object(request, required=("name", "datatype"), optional=("description", "format"))
        name = text_field(body, "name")
        text_field(body, "description", required=False)
        check_datatype(body["datatype"], body.get("format"))
        if name.lower() == "customerid":
            raise ApiError(400, "the name customerId (any case) is the key column of uploads; pick another")
        with state.lock:
            table = table_of(table_id)
            if table["archived"]:
                raise ApiError(400, f"table {table['id']} is archived: it takes no new attributes")
            if name in state.live_attributes(table["id"]):
                raise ApiError(409, f"table {table['id']} already has an attribute named {name!r}")
            return created(state.create_attribute(table["id"], body))

    @router.get("/dcp_datasource_attributes/{attribute_id}")
    def get_attribute(attribute_id: str) -> dict[str, Any]:
        with state.lock:
            attribute = attribute_of(attribute_id)
            if attribute["archived"]:
                raise ApiError(404, f"attribute {attribute_id} is archived: it can't be read")
            return dict(attribute)

    @router.put("/dcp_datasource_attributes/{attribute_id}")
    async def update_attribute(attribute_id: str, request: Request) -> JSONResponse:
        body = await read_json_object(request)
        with state.lock:
            attribute = live_attribute(attribute_id)
            check_put_fields(body, attribute, ("description",))
            if "description" in body:
                attribute["description"] = text_field(body, "description", required=False)
                attribute["last_modified"] = now_iso()
            return accepted(dict(attribute))

    @router.delete("/dcp_datasource_attributes/{attribute_id}")
    def archive_attribute(attribute_id: str) -> Response:
        with state.lock:
            attribute = live_attribute(attribute_id)
            attribute["archived"] = True
            attribute["last_modified"] = now_iso()
        return Response(status_code=204)

    # --- Upload History ------------------------------------------------------------------------

    @router.get("/dcp_datasources/{table_id}/upload_history")
    def upload_history(table_id: str, request: Request) -> JSONResponse:
        with state.lock:
            table = table_of(table_id)
            entries = [dict(e) for e in reversed(state.uploads.get(table["id"], []))]
        return paginate(request, entries)

    return router
