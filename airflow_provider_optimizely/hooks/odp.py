"""OptimizelyOdpHook: Optimizely Data Platform REST v3 (docs/api-contract.md §5).

Events, profiles and objects go out as plain dicts (one JSON encoding a batch). The private key (the
connection's password) is used for every call; with no password, the public key (extra
``public_api_key``) is used for the routes that take it (``POST /events``, ``POST /objects/{type}``,
``GET /objects/{type}/{id}``). Every other route (``POST /profiles``, ``GET /profiles``, ``/schema``,
``/segments``) takes the private key only: without it the call fails before anything is sent, naming the
connection and its missing password.
"""

from __future__ import annotations

from collections.abc import Iterator, Mapping, Sequence
from functools import cached_property
from typing import Any

from airflow.sdk import Connection

from airflow_provider_optimizely.core.errors import (
    InvalidRequestError,
    NotFoundError,
    OptimizelyConfigError,
)
from airflow_provider_optimizely.core.ratelimit import Budget, RateLimiter
from airflow_provider_optimizely.core.rest import RestClient
from airflow_provider_optimizely.hooks.base import OptimizelyBaseHook
from airflow_provider_optimizely.models.odp import (
    NewSchemaField,
    NewSchemaObject,
    OdpFieldType,
    OdpObject,
    OdpProfile,
    SchemaField,
    SchemaObject,
    Segment,
)

MAX_BATCH = 500
# docs/api-contract.md §3: ODP profiles take 10 requests/s; events and objects have no published limit.
PROFILES_PER_SECOND = 10.0


class OptimizelyOdpHook(OptimizelyBaseHook):
    """Optimizely Data Platform v3: events, profiles, objects, schema, segments."""

    conn_name_attr = "optimizely_odp_conn_id"
    default_conn_name = "optimizely_odp_default"
    conn_type = "optimizely_odp"
    hook_name = "Optimizely Data Platform (ODP)"
    api_name = "ODP"
    default_host = "https://api.zaius.com/v3"
    secret_extras = ("public_api_key",)
    default_budget = None

    def auth_headers(self, conn: Connection) -> dict[str, str]:
        key = conn.password or conn.extra_dejson.get("public_api_key")
        if not key:
            raise OptimizelyConfigError(
                f"connection {self.conn_id!r} (optimizely_odp) needs the private API key in password"
            )
        return {"x-api-key": str(key)}

    def auth_hint(self, conn: Connection) -> str:
        if conn.password:
            return (
                "Check the connection's password (the ODP private API key) and its host (your region's API)"
            )
        return "Check the connection's extra public_api_key and its host (your region's API)"

    def _private_key_route(self, route: str) -> None:
        """Fail before sending when only the public key is set: ``route`` takes the private key only."""
        if not self.connection.password:
            raise OptimizelyConfigError(
                f"connection {self.conn_id!r} (optimizely_odp): ODP {route} takes the private API key "
                "only, and the connection has none: put the private key in its password (public_api_key "
                "is enough for events and objects only)"
            )

    @cached_property
    def profiles_rate_limiter(self) -> RateLimiter:
        """POST /profiles has its own limit: 10/s, or the connection's budget if that is lower."""
        budget = self.budget()
        per_second = PROFILES_PER_SECOND
        if budget is not None:
            per_second = min(per_second, budget.max_requests / budget.period)
        return self.rate_limiter(Budget.per_second(per_second), route="POST /profiles")

    # -- data -------------------------------------------------------------------------------------------

    def send_events(self, events: Sequence[Mapping[str, Any]]) -> dict[str, Any]:
        """Send at most 500 events (``{type, action, identifiers, data}``); 202 answers its acceptance."""
        _check_batch(events, "events")
        return _json(self.client.request("POST", "events", json=events, expected=(202,)))

    def upsert_profiles(self, profiles: Sequence[Mapping[str, Any]] | Mapping[str, Any]) -> dict[str, Any]:
        """Create or update profiles (``{identifiers, attributes}``, one or a list of at most 500)."""
        self._private_key_route("POST /profiles")
        if not isinstance(profiles, Mapping):
            _check_batch(profiles, "profiles")
        response = self.client.request(
            "POST", "profiles", json=profiles, expected=(200,), rate_limiter=self.profiles_rate_limiter
        )
        return _json(response)

    def get_profile(
        self, identifier_field: str, identifier_value: str, fields: Sequence[str] | None = None
    ) -> OdpProfile | None:
        self._private_key_route("GET /profiles")
        params = {"fields": ",".join(fields)} if fields else None
        field = self.segment(identifier_field, "identifier field")
        path = f"profiles/{field}/{self.segment(identifier_value, 'identifier value')}"
        try:
            answer = self.client.get_json(path, params=params)
        except NotFoundError:
            return None
        return OdpProfile.model_validate(answer)

    def upsert_objects(self, object_type: str, objects: Sequence[Mapping[str, Any]]) -> dict[str, Any]:
        """Create or update at most 500 objects (``{object_id, fields}``) of one type."""
        _check_batch(objects, "objects")
        path = f"objects/{self._type(object_type)}"
        return _json(self.client.request("POST", path, json=objects, expected=(202,)))

    def get_object(self, object_type: str, object_id: str) -> OdpObject | None:
        path = f"objects/{self._type(object_type)}/{self.segment(object_id, 'object id')}"
        try:
            answer = self.client.get_json(path)
        except NotFoundError:
            return None
        return OdpObject.model_validate(answer)

    # -- schema -----------------------------------------------------------------------------------------

    def list_schema_objects(self) -> Iterator[SchemaObject]:
        self._private_key_route("GET /schema/objects")
        for item in self.client.paginate("schema/objects"):
            yield SchemaObject.model_validate(item)

    def get_schema_object(self, object_type: str) -> SchemaObject | None:
        self._private_key_route("GET /schema/objects/{object_type}")
        path = f"schema/objects/{self._type(object_type)}"
        try:
            answer = self.client.get_json(path)
        except NotFoundError:
            return None
        return SchemaObject.model_validate(answer)

    def create_schema_object(
        self, object_type: str, display_name: str, description: str | None = None
    ) -> SchemaObject:
        self._private_key_route("POST /schema/objects/{object_type}")
        body = NewSchemaObject(display_name=display_name, description=description).to_body()
        path = f"schema/objects/{self._type(object_type)}"
        response = self.client.request("POST", path, json=body, expected=(201,))
        return SchemaObject.model_validate({"name": object_type, **(_json(response) or {})})

    def create_schema_field(
        self,
        object_type: str,
        name: str,
        display_name: str,
        type: OdpFieldType,
        description: str | None = None,
    ) -> SchemaField:
        self._private_key_route("POST /schema/objects/{object_type}/fields")
        body = NewSchemaField(
            name=name, display_name=display_name, type=type, description=description
        ).to_body()
        path = f"schema/objects/{self._type(object_type)}/fields"
        response = self.client.request("POST", path, json=body, expected=(201,))
        return SchemaField.model_validate({**body, **(_json(response) or {})})

    def list_segments(self) -> Iterator[Segment]:
        self._private_key_route("GET /segments")
        for item in self.client.paginate("segments"):
            yield Segment.model_validate(item)

    # -- test_connection --------------------------------------------------------------------------------

    def probe(self, client: RestClient) -> str:
        self._private_key_route("GET /schema/objects (the connection test)")
        objects = client.get_json("schema/objects")
        return f"ODP private key accepted ({len(objects or [])} schema object(s))"

    def _type(self, object_type: str) -> str:
        return self.segment(object_type, "object type")


def _check_batch(items: Sequence[Any], what: str) -> None:
    if len(items) > MAX_BATCH:
        raise InvalidRequestError(f"ODP takes at most {MAX_BATCH} {what} per request, got {len(items)}")


def _json(response: Any) -> Any:
    return response.json() if response.content else {}
