"""The emulated DCP profile and alias API (docs/api-contract.md §4.3), routes relative to
``/dcp/profile-api``.

Readings of the contract, where docs/api-contract.md leaves a choice:

- Same auth as the REST API (``dcp_auth``).
- ``POST customer_profile/...`` answers 201 with the whole stored profile after the write (sent values
  overwrite, others stay). ``data`` must name at least one attribute. Values follow ``dcp_values`` (JSON
  values of the attribute's own type, under the ``value_syntax`` setting); one
  unknown, archived or ill-typed attribute refuses the whole write (400, every problem in the message).
- An unknown service, table (or one of another service, or archived) or customer answers 404.
- ``alias``: ``optimizelyDatasourceId`` must be the service's Optimizely table (else 400). ``data`` maps
  table ids (strings, as JSON keys are) of the same service to customer ids; a POST adds to or replaces
  entries of that user's aliases and answers 201 with them all in the shape of a profile
  (``{data, dcpServiceId, datasourceId, customerId}``, ``customerId`` being the Optimizely user id).
- ``consolidatedCustomerView``: the Optimizely table's profile of that user (if any), then the profile of
  each aliased table (if any), by table id; 404 when the user has neither aliases nor a profile.
- Every accepted write is recorded in ``Received`` as an item of kind ``dcp_profiles`` keyed by a
  fingerprint of (table, customer, data), so a test can see the same write arriving twice.
"""

from __future__ import annotations

from typing import Any

from fastapi import APIRouter, Depends, Request
from fastapi.responses import JSONResponse

from airflow_provider_optimizely.emulator.common import ApiError, EmulatorSettings, Received, item_fingerprint
from airflow_provider_optimizely.emulator.dcp import json_object, parse_id
from airflow_provider_optimizely.emulator.dcp_auth import token_auth
from airflow_provider_optimizely.emulator.dcp_state import DcpState
from airflow_provider_optimizely.emulator.dcp_values import ValueRefused, describe, from_json


def create_router(state: DcpState, settings: EmulatorSettings, received: Received) -> APIRouter:
    router = APIRouter(dependencies=[Depends(token_auth(state, settings))])

    def live_table(service_id: str, table_id: str) -> dict[str, Any]:
        """The table, checked to belong to the service and not to be archived (call under the lock)."""
        service = state.services.get(parse_id(service_id, "DCP service"))
        if service is None:
            raise ApiError(404, f"no DCP service with id {service_id}")
        table = state.tables.get(parse_id(table_id, "table"))
        if table is None or table["dcp_service_id"] != service["id"]:
            raise ApiError(404, f"no table with id {table_id} in DCP service {service_id}")
        if table["archived"]:
            raise ApiError(404, f"table {table_id} is archived")
        return table

    @router.get("/customer_profile/{service_id}/{table_id}/{customer_id:path}")
    def get_profile(service_id: str, table_id: str, customer_id: str) -> dict[str, Any]:
        with state.lock:
            table = live_table(service_id, table_id)
            profile = state.profile_view(table["id"], customer_id)
        if profile is None:
            raise ApiError(404, f"no profile for customer {customer_id!r} in table {table_id}")
        return profile

    @router.post("/customer_profile/{service_id}/{table_id}/{customer_id:path}")
    async def write_profile(
        service_id: str, table_id: str, customer_id: str, request: Request
    ) -> JSONResponse:
        body = await json_object(request, required=("data",))
        data = body["data"]
        if not isinstance(data, dict) or not data:
            raise ApiError(400, "data must be a JSON object naming at least one attribute")
        with state.lock:
            table = live_table(service_id, table_id)
            attributes = state.live_attributes(table["id"])
            values: dict[int, Any] = {}
            problems: list[str] = []
            for name, value in data.items():
                attribute = attributes.get(name)
                if attribute is None:
                    problems.append(f"{name!r} is not a registered attribute of table {table['id']}")
                    continue
                try:
                    values[attribute["id"]] = from_json(
                        value, attribute["datatype"], attribute["format"], settings.value_syntax
                    )
                except ValueRefused as exc:
                    kind = describe(attribute["datatype"], attribute["format"])
                    problems.append(f"{name!r} ({kind}): {exc}")
            if problems:
                raise ApiError(400, "the profile was not written: " + "; ".join(problems))
            state.write_profile(table["id"], customer_id, values)
            profile = state.profile_view(table["id"], customer_id)
        received.add_items("dcp_profiles", [item_fingerprint([table["id"], customer_id, data])])
        return JSONResponse(profile, status_code=201)

    @router.get("/consolidatedCustomerView/{service_id}/{optimizely_user_id:path}")
    def consolidated_view(service_id: str, optimizely_user_id: str) -> list[dict[str, Any]]:
        with state.lock:
            service = state.services.get(parse_id(service_id, "DCP service"))
            if service is None:
                raise ApiError(404, f"no DCP service with id {service_id}")
            optimizely_table = state.optimizely_table(service["id"])
            aliases = state.aliases.get(service["id"], {}).get(optimizely_user_id, {})
            pairs = [(optimizely_table["id"], optimizely_user_id), *sorted(aliases.items())]
            profiles = [
                profile
                for table_id, customer_id in pairs
                if not state.tables[table_id]["archived"]
                and (profile := state.profile_view(table_id, customer_id)) is not None
            ]
        if not profiles and not aliases:
            raise ApiError(404, f"nothing is known of Optimizely user {optimizely_user_id!r}")
        return profiles

    def alias_view(service_id: int, optimizely_table_id: int, user_id: str) -> dict[str, Any] | None:
        mapping = state.aliases.get(service_id, {}).get(user_id)
        if mapping is None:
            return None
        return {
            "data": {str(table_id): customer_id for table_id, customer_id in sorted(mapping.items())},
            "dcpServiceId": service_id,
            "datasourceId": optimizely_table_id,
            "customerId": user_id,
        }

    def optimizely_table_of(service_id: str, optimizely_table_id: str) -> tuple[int, int]:
        service = state.services.get(parse_id(service_id, "DCP service"))
        if service is None:
            raise ApiError(404, f"no DCP service with id {service_id}")
        optimizely_table = state.optimizely_table(service["id"])
        if parse_id(optimizely_table_id, "table") != optimizely_table["id"]:
            raise ApiError(
                400,
                f"aliases belong to the Optimizely table {optimizely_table['id']}, not {optimizely_table_id}",
            )
        return service["id"], optimizely_table["id"]

    @router.get("/alias/{service_id}/{optimizely_table_id}/{optimizely_user_id:path}")
    def get_alias(service_id: str, optimizely_table_id: str, optimizely_user_id: str) -> dict[str, Any]:
        with state.lock:
            svc, table_id = optimizely_table_of(service_id, optimizely_table_id)
            view = alias_view(svc, table_id, optimizely_user_id)
        if view is None:
            raise ApiError(404, f"no alias for Optimizely user {optimizely_user_id!r}")
        return view

    @router.post("/alias/{service_id}/{optimizely_table_id}/{optimizely_user_id:path}")
    async def create_alias(
        service_id: str, optimizely_table_id: str, optimizely_user_id: str, request: Request
    ) -> JSONResponse:
        body = await json_object(request, required=("data",))
        data = body["data"]
        if not isinstance(data, dict) or not data:
            raise ApiError(400, "data must map at least one table id to a customer id")
        with state.lock:
            svc, table_id = optimizely_table_of(service_id, optimizely_table_id)
            mapping: dict[int, str] = {}
            for key, customer_id in data.items():
                table = state.tables.get(int(key)) if str(key).isdigit() else None
                if (
                    table is None
                    or table["dcp_service_id"] != svc
                    or table["is_optimizely"]
                    or table["archived"]
                ):
                    raise ApiError(400, f"{key!r} is not a live customer table of DCP service {svc}")
                if not isinstance(customer_id, str) or not customer_id:
                    raise ApiError(400, f"the customer id for table {key} must be a non-empty string")
                mapping[table["id"]] = customer_id
            state.aliases.setdefault(svc, {}).setdefault(optimizely_user_id, {}).update(mapping)
            view = alias_view(svc, table_id, optimizely_user_id)
        return JSONResponse(view, status_code=201)

    return router
