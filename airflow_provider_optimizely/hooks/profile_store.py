"""OptimizelyProfileStoreHook: Optimizely Profile Store v1.0 (docs/api-contract.md §6; the vendor now
prefers ODP)."""

from __future__ import annotations

from collections.abc import Iterator, Mapping
from contextlib import suppress
from typing import Any, NamedTuple

from airflow.sdk import Connection

from airflow_provider_optimizely.core.errors import NotFoundError
from airflow_provider_optimizely.core.rest import RestClient
from airflow_provider_optimizely.hooks.base import OptimizelyBaseHook
from airflow_provider_optimizely.models.profile_store import StoredProfile

PROFILES_PATH = "api/v1.0/profiles"
DEFAULT_SCOPE = "default"
# docs/api-contract.md §6: $skip + $top must stay under 10000.
MAX_QUERY_WINDOW = 10_000
# A profile id no store holds: a GET of it proves the key without touching data.
_PROBE_PROFILE_ID = "00000000-0000-0000-0000-000000000000"


class PutOutcome(NamedTuple):
    profile: StoredProfile
    created: bool


class OptimizelyProfileStoreHook(OptimizelyBaseHook):
    """Profile Store v1.0: get, create, replace, delete and query profiles."""

    conn_name_attr = "optimizely_profile_store_conn_id"
    default_conn_name = "optimizely_profile_store_default"
    conn_type = "optimizely_profile_store"
    hook_name = "Optimizely Profile Store"
    api_name = "ProfileStore"
    default_host = None  # each instance has its own URL

    def auth_headers(self, conn: Connection) -> dict[str, str]:
        return {"Authorization": f"epi-single {self._require_password(conn, 'the API key')}"}

    def auth_hint(self, conn: Connection) -> str:
        return (
            "Check the connection's password (the Profile Store API key) and its host (your instance's URL)"
        )

    @property
    def default_scope(self) -> str:
        return str(self.extras.get("default_scope") or DEFAULT_SCOPE)

    def get_profile(self, profile_id: str, scope: str | None = None) -> StoredProfile | None:
        try:
            answer = self.client.get_json(self._profile_path(profile_id, scope))
        except NotFoundError:
            return None
        return StoredProfile.model_validate(answer)

    def create_profile(self, profile: Mapping[str, Any] | StoredProfile) -> StoredProfile:
        """POST a new profile (409 ConflictError on a duplicate DeviceId or Info.Email)."""
        response = self.client.request("POST", f"{PROFILES_PATH}/", json=_body(profile), expected=(201,))
        return StoredProfile.model_validate(response.json())

    def put_profile(self, profile_id: str, profile: Mapping[str, Any] | StoredProfile) -> PutOutcome:
        """Replace a profile, or create it under that id: ``created`` tells which (201 vs 200)."""
        path = f"{PROFILES_PATH}/{self.segment(profile_id, 'profile id')}"
        response = self.client.request("PUT", path, json=_body(profile), expected=(200, 201))
        return PutOutcome(StoredProfile.model_validate(response.json()), response.status_code == 201)

    def delete_profile(self, profile_id: str, scope: str | None = None) -> bool:
        """Delete a profile and its events; False when there was none (404)."""
        try:
            self.client.request("DELETE", self._profile_path(profile_id, scope), expected=(200,))
        except NotFoundError:
            return False
        return True

    def query_profiles(
        self,
        filter: str | None = None,
        order_by: str | None = None,
        page_size: int = 100,
        limit: int | None = None,
    ) -> Iterator[StoredProfile]:
        """Lazily page through ``$top``/``$skip`` until a short page, ``limit``, or the API's 10000 window."""
        skip = 0
        yielded = 0
        while skip < MAX_QUERY_WINDOW:
            top = min(page_size, MAX_QUERY_WINDOW - 1 - skip)
            if top <= 0:
                return
            params: dict[str, Any] = {"$top": top, "$skip": skip}
            if filter:
                params["$filter"] = filter
            if order_by:
                params["$orderBy"] = order_by
            answer = self.client.get_json(PROFILES_PATH, params=params)
            items = answer.get("items", []) if isinstance(answer, dict) else (answer or [])
            for item in items:
                yield StoredProfile.model_validate(item)
                yielded += 1
                if limit is not None and yielded >= limit:
                    return
            if len(items) < top:
                return
            skip += top

    def probe(self, client: RestClient) -> str:
        with suppress(NotFoundError):  # past authentication, the unknown profile is a 404
            client.get_json(self._profile_path(_PROBE_PROFILE_ID, None))
        return "Profile Store key accepted"

    def _profile_path(self, profile_id: str, scope: str | None) -> str:
        scope_segment = self.segment(self.default_scope if scope is None else scope, "scope")
        return f"{PROFILES_PATH}/{scope_segment}/{self.segment(profile_id, 'profile id')}"


def _body(profile: Mapping[str, Any] | StoredProfile) -> Any:
    return profile.to_body() if isinstance(profile, StoredProfile) else profile
