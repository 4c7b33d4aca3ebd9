"""What the emulated DCP stores: services, tables, attributes, profiles, aliases and Upload History.

Everything is guarded by one re-entrant lock, shared by the HTTP routes and the S3 import worker. Ids come
from one counter that a reset does not rewind, so an object left in S3 by an earlier test can never be
taken for an upload to a new table that happens to get the same id.
"""

from __future__ import annotations

import secrets
import string
import threading
from datetime import datetime, timezone
from typing import Any

ACCOUNT_ID = 10_001
FIRST_ID = 20_001
OPTIMIZELY_TABLE = {
    "name": "Optimizely",
    "description": "Optimizely end users (optimizelyEndUserId), created with the service",
    "keyfield_locator_type": "cookie",
    "keyfield_locator_name": "optimizelyEndUserId",
}


def now_iso() -> str:
    return datetime.now(timezone.utc).isoformat(timespec="microseconds").replace("+00:00", "Z")


def _aws_key_pair() -> tuple[str, str]:
    alphabet = string.ascii_uppercase + string.digits
    access = "AKIA" + "".join(secrets.choice(alphabet) for _ in range(16))
    secret = "".join(secrets.choice(string.ascii_letters + string.digits + "/+") for _ in range(40))
    return access, secret


class DcpState:
    """The DCP account of the emulator (one account, at most one service)."""

    def __init__(self) -> None:
        self.lock = threading.RLock()
        self.next_id = FIRST_ID
        self.reset()

    def reset(self) -> None:
        """Forget everything but the id counter (see the module docstring)."""
        with self.lock:
            self.generation = getattr(self, "generation", 0) + 1
            self.services: dict[int, dict[str, Any]] = {}
            self.tables: dict[int, dict[str, Any]] = {}
            self.attributes: dict[int, dict[str, Any]] = {}
            # table id -> customer id -> attribute id -> stored value. Keyed by attribute id so that the
            # values of an archived attribute vanish even when a new one of the same name is created.
            self.profiles: dict[int, dict[str, dict[int, Any]]] = {}
            # service id -> Optimizely user id -> table id -> customer id
            self.aliases: dict[int, dict[str, dict[int, str]]] = {}
            # table id -> Upload History entries, oldest first
            self.uploads: dict[int, list[dict[str, Any]]] = {}
            # OAuth 2.0 (dcp_auth): client id -> secret, live refresh token -> client id, access token ->
            # the Unix time it expires
            self.oauth_clients: dict[str, str] = {}
            self.refresh_tokens: dict[str, str] = {}
            self.access_tokens: dict[str, float] = {}

    def new_id(self) -> int:
        with self.lock:
            self.next_id += 1
            return self.next_id - 1

    # --- services and tables ---------------------------------------------------------------------

    def create_service(self, name: str) -> dict[str, Any]:
        with self.lock:
            service_id = self.new_id()
            access, secret = _aws_key_pair()
            created = now_iso()
            service = {
                "id": service_id,
                "account_id": ACCOUNT_ID,
                "archived": False,
                "aws_access_key": access,
                "aws_secret_key": secret,
                "created": created,
                "last_modified": created,
                "name": name,
                "s3_path": f"dcp/{service_id}",
            }
            self.services[service_id] = service
            self.create_table(service_id, dict(OPTIMIZELY_TABLE), is_optimizely=True)
            return service

    def create_table(
        self, service_id: int, fields: dict[str, Any], *, is_optimizely: bool = False
    ) -> dict[str, Any]:
        with self.lock:
            table_id = self.new_id()
            access, secret = _aws_key_pair()
            created = now_iso()
            table = {
                "id": table_id,
                "archived": False,
                "aws_access_key": access,
                "aws_secret_key": secret,
                "created": created,
                "dcp_service_id": service_id,
                "description": fields.get("description") or "",
                "is_optimizely": is_optimizely,
                "keyfield_locator_name": fields.get("keyfield_locator_name") or "",
                "keyfield_locator_type": fields["keyfield_locator_type"],
                "last_modified": created,
                "name": fields["name"],
                "s3_path": f"dcp/{service_id}/{table_id}",
            }
            self.tables[table_id] = table
            self.profiles[table_id] = {}
            self.uploads[table_id] = []
            return table

    def table_view(self, table_id: int) -> dict[str, Any]:
        """A table as the API answers it: with its attributes, archived ones included and marked."""
        with self.lock:
            table = dict(self.tables[table_id])
            table["attributes"] = [
                dict(a) for a in self.attributes.values() if a["dcp_datasource_id"] == table_id
            ]
            return table

    def optimizely_table(self, service_id: int) -> dict[str, Any]:
        with self.lock:
            return next(
                t for t in self.tables.values() if t["dcp_service_id"] == service_id and t["is_optimizely"]
            )

    def live_tables(self) -> list[dict[str, Any]]:
        with self.lock:
            return [dict(t) for t in self.tables.values() if not t["archived"]]

    # --- attributes ------------------------------------------------------------------------------

    def live_attributes(self, table_id: int) -> dict[str, dict[str, Any]]:
        """The table's attributes that are not archived, by (case-sensitive) name."""
        with self.lock:
            return {
                a["name"]: dict(a)
                for a in self.attributes.values()
                if a["dcp_datasource_id"] == table_id and not a["archived"]
            }

    def create_attribute(self, table_id: int, fields: dict[str, Any]) -> dict[str, Any]:
        with self.lock:
            attribute_id = self.new_id()
            created = now_iso()
            attribute = {
                "id": attribute_id,
                "archived": False,
                "created": created,
                "datatype": fields["datatype"],
                "dcp_datasource_id": table_id,
                "description": fields.get("description") or "",
                "format": fields.get("format"),
                "last_modified": created,
                "name": fields["name"],
            }
            self.attributes[attribute_id] = attribute
            return attribute

    # --- profiles and aliases --------------------------------------------------------------------

    def write_profile(self, table_id: int, customer_id: str, values: dict[int, Any]) -> None:
        """Overwrite the given attribute values of one customer (values already checked)."""
        with self.lock:
            self.profiles[table_id].setdefault(customer_id, {}).update(values)

    def profile_view(self, table_id: int, customer_id: str) -> dict[str, Any] | None:
        """``{data, dcpServiceId, datasourceId, customerId}``; archived attributes left out."""
        with self.lock:
            stored = self.profiles.get(table_id, {}).get(customer_id)
            if stored is None:
                return None
            data = {
                self.attributes[attribute_id]["name"]: value
                for attribute_id, value in stored.items()
                if not self.attributes[attribute_id]["archived"]
            }
            return {
                "data": data,
                "dcpServiceId": self.tables[table_id]["dcp_service_id"],
                "datasourceId": table_id,
                "customerId": customer_id,
            }

    # --- OAuth access tokens ---------------------------------------------------------------------

    def add_access_token(self, token: str, expires_at: float) -> None:
        with self.lock:
            self.access_tokens[token] = expires_at

    def access_token_expiry(self, token: str) -> float | None:
        with self.lock:
            return self.access_tokens.get(token)

    def expire_access_tokens(self, at: float) -> int:
        """Make every access token expire at ``at`` (a test's shortcut to the end of their lifetime)."""
        with self.lock:
            for token in self.access_tokens:
                self.access_tokens[token] = min(self.access_tokens[token], at)
            return len(self.access_tokens)

    # --- Upload History --------------------------------------------------------------------------

    def seen_versions(self) -> set[str]:
        with self.lock:
            return {entry["s3_version_id"] for entries in self.uploads.values() for entry in entries}

    # --- persistence -----------------------------------------------------------------------------

    def to_dict(self) -> dict[str, Any]:
        with self.lock:
            return {
                "next_id": self.next_id,
                "services": list(self.services.values()),
                "tables": list(self.tables.values()),
                "attributes": list(self.attributes.values()),
                "profiles": [
                    {
                        "table_id": table_id,
                        "customer_id": customer_id,
                        "values": {str(k): v for k, v in values.items()},
                    }
                    for table_id, customers in self.profiles.items()
                    for customer_id, values in customers.items()
                ],
                "aliases": [
                    {
                        "service_id": service_id,
                        "optimizely_user_id": user_id,
                        "data": {str(k): v for k, v in data.items()},
                    }
                    for service_id, users in self.aliases.items()
                    for user_id, data in users.items()
                ],
                "uploads": [entry for entries in self.uploads.values() for entry in entries],
                "oauth": {
                    "clients": dict(self.oauth_clients),
                    "refresh_tokens": dict(self.refresh_tokens),
                    "access_tokens": dict(self.access_tokens),
                },
            }

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> DcpState:
        state = cls()
        state.next_id = int(data.get("next_id", FIRST_ID))
        state.services = {s["id"]: s for s in data.get("services", [])}
        state.tables = {t["id"]: t for t in data.get("tables", [])}
        state.attributes = {a["id"]: a for a in data.get("attributes", [])}
        state.profiles = {table_id: {} for table_id in state.tables}
        state.uploads = {table_id: [] for table_id in state.tables}
        for profile in data.get("profiles", []):
            values = {int(k): v for k, v in profile["values"].items()}
            state.profiles.setdefault(profile["table_id"], {})[profile["customer_id"]] = values
        for alias in data.get("aliases", []):
            mapping = {int(k): v for k, v in alias["data"].items()}
            state.aliases.setdefault(alias["service_id"], {})[alias["optimizely_user_id"]] = mapping
        for entry in data.get("uploads", []):
            state.uploads.setdefault(entry["table_id"], []).append(entry)
        oauth = data.get("oauth", {})
        state.oauth_clients = dict(oauth.get("clients", {}))
        state.refresh_tokens = dict(oauth.get("refresh_tokens", {}))
        state.access_tokens = {k: float(v) for k, v in oauth.get("access_tokens", {}).items()}
        return state
