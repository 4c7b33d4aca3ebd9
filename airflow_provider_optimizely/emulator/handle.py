"""``EmulatorHandle``: where a running emulator is, how to connect to it, and its admin calls.

Light on purpose (no FastAPI, moto or uvicorn): the pytest plugin imports it in every user's session.
"""

from __future__ import annotations

import json
from typing import Any

import requests

# The default connection ids of docs/api-contract.md §2 and their connection types.
CONNECTION_TYPES = {
    "optimizely_default": "optimizely",
    "optimizely_odp_default": "optimizely_odp",
    "optimizely_profile_store_default": "optimizely_profile_store",
    "optimove_default": "optimove",
}


class EmulatorHandle:
    """A running emulator: ``base_url``, ``s3_endpoint_url``, ``urls`` per API, ``keys``, admin calls."""

    def __init__(
        self, base_url: str, s3_endpoint_url: str | None, keys: dict[str, str], s3_region: str = "us-east-1"
    ):
        self.base_url = base_url.rstrip("/")
        self.s3_endpoint_url = s3_endpoint_url
        self.s3_region = s3_region
        self.keys = dict(keys)
        self.urls = {
            "dcp": f"{self.base_url}/dcp/experiment/v1",
            "dcp_profiles": f"{self.base_url}/dcp/profile-api",
            "dcp_oauth_token": f"{self.base_url}/dcp/oauth2/token",
            "odp": f"{self.base_url}/odp/v3",
            "profile_store": f"{self.base_url}/profile-store",
            "optimove": f"{self.base_url}/optimove/api/data-connections/v1",
            "admin": f"{self.base_url}/_emulator",
        }
        self._session = requests.Session()

    def __repr__(self) -> str:
        return f"EmulatorHandle(base_url={self.base_url!r}, s3_endpoint_url={self.s3_endpoint_url!r})"

    # --- connections -----------------------------------------------------------------------------

    def connection(self, conn_id_or_type: str) -> dict[str, Any]:
        """The Airflow connection (as a dict) for a default conn id or a connection type."""
        conn_type = CONNECTION_TYPES.get(conn_id_or_type, conn_id_or_type)
        if conn_type == "optimizely":
            extra = {
                "profile_api_base": self.urls["dcp_profiles"],
                "s3_endpoint_url": self.s3_endpoint_url,
                "s3_region": self.s3_region,
            }
            return {
                "conn_type": conn_type,
                "host": self.urls["dcp"],
                "password": self.keys["dcp_token"],
                "extra": extra,
            }
        if conn_type == "optimizely_odp":
            return {
                "conn_type": conn_type,
                "host": self.urls["odp"],
                "password": self.keys["odp_private_key"],
                "extra": {"public_api_key": self.keys["odp_public_key"]},
            }
        if conn_type == "optimizely_profile_store":
            return {
                "conn_type": conn_type,
                "host": self.urls["profile_store"],
                "password": self.keys["profile_store_key"],
            }
        if conn_type == "optimove":
            return {
                "conn_type": conn_type,
                "host": self.urls["optimove"],
                "password": self.keys["optimove_api_key"],
                "extra": {"brand_api_key": self.keys["optimove_brand_key"]},
            }
        raise KeyError(f"no emulated connection {conn_id_or_type!r}: one of {', '.join(CONNECTION_TYPES)}")

    def connection_json(self, conn_id: str) -> str:
        """The value of ``AIRFLOW_CONN_<CONN_ID>`` that points ``conn_id`` at this emulator."""
        return json.dumps(self.connection(conn_id))

    def airflow_env(self) -> dict[str, str]:
        """``AIRFLOW_CONN_*`` variables for the four default connection ids."""
        return {
            f"AIRFLOW_CONN_{conn_id.upper()}": self.connection_json(conn_id) for conn_id in CONNECTION_TYPES
        }

    def oauth_connection(self, conn_id_or_type: str = "optimizely", **issued: str) -> dict[str, Any]:
        """The DCP connection for OAuth 2.0 (``auth_scheme: oauth``): a client registered here, its refresh
        token, a first access token in ``password``, the token URL. ``issued`` reuses ``issue_oauth_token``'s
        answer instead of registering a new client."""
        grant = issued or self.issue_oauth_token()
        connection = self.connection(conn_id_or_type)
        if connection["conn_type"] != "optimizely":
            raise KeyError("OAuth 2.0 is DCP's (the optimizely connection type)")
        connection["password"] = grant["access_token"]
        connection["extra"] = {
            **connection["extra"],
            "auth_scheme": "oauth",
            "oauth_refresh_token": grant["refresh_token"],
            "oauth_client_id": grant["client_id"],
            "oauth_client_secret": grant["client_secret"],
            "oauth_refresh_url": self.urls["dcp_oauth_token"],
        }
        return connection

    def s3_client(self, access_key: str, secret_key: str) -> Any:
        """A boto3 S3 client on the emulator's S3 endpoint, signing with the given keys: a table's own keys
        upload as a customer would; any other key is refused as S3 would refuse it."""
        import boto3  # here, not at the top: this module must stay light (see above)
        from botocore.config import Config

        return boto3.client(
            "s3",
            endpoint_url=self.s3_endpoint_url,
            region_name=self.s3_region,
            aws_access_key_id=access_key,
            aws_secret_access_key=secret_key,
            config=Config(s3={"addressing_style": "path"}),
        )

    def s3_admin_client(self) -> Any:
        """An S3 client with the emulator's own keys: it may look at (and change) the whole bucket."""
        return self.s3_client(self.keys["s3_admin_access_key"], self.keys["s3_admin_secret_key"])

    # --- admin -----------------------------------------------------------------------------------

    def _admin(self, method: str, path: str, **kwargs: Any) -> Any:
        response = self._session.request(method, f"{self.urls['admin']}/{path}", timeout=30, **kwargs)
        response.raise_for_status()
        return response.json()

    def health(self) -> dict[str, Any]:
        result: dict[str, Any] = self._admin("GET", "health")
        return result

    def reset(self) -> None:
        """Empty all four APIs and the S3 bucket, forget what was received, restore start-up faults/limits."""
        self._admin("POST", "reset")

    def set_faults(self, api: str, route: str | None = None, **faults: Any) -> list[dict[str, Any]]:
        """Set the faults of one API (or one of its routes, ``"POST /events"``); see ``faults.py``."""
        result: list[dict[str, Any]] = self._admin(
            "PUT", "faults", json={"api": api, "route": route, **faults}
        )
        return result

    def clear_faults(self) -> None:
        self._admin("DELETE", "faults")

    def set_rate_limit(
        self, api: str, limit: int | None, window_seconds: float = 60.0, route: str | None = None
    ) -> None:
        """A budget of ``limit`` requests per ``window_seconds`` (None removes it), per API or route."""
        target = f"{api}:{route}" if route else api
        value = None if limit is None else {"limit": limit, "window_seconds": window_seconds}
        self._admin("PUT", "rate_limits", json={target: value})

    def set_processing_delay(self, seconds: float) -> None:
        """How long (vendor seconds, scaled by the time scale) an uploaded file stays ``pending`` in Upload
        History, until the next reset."""
        self.configure(upload_processing_delay=seconds)

    def set_time_scale(self, factor: float) -> None:
        """Real seconds per vendor second (until the next reset): ``0.01`` turns DCP's 60 s ``Retry-After``
        into 0.6 s, a one-hour token into 36 s, the ODP 10/s window into 10 ms."""
        self.configure(time_scale=factor)

    def configure(self, **settings: Any) -> dict[str, Any]:
        """Change run-time settings (until the next reset): ``time_scale``, ``upload_processing_delay``,
        ``oauth_access_token_seconds`` and the readings (``binary_units``, ``empty_cells``, ``value_syntax``,
        ``profile_store_duplicates``, ``reorder_same_name_uploads``, ``oauth_rotate_refresh_tokens``,
        ``profile_store_server_fields``).
        Answers all of them as they now are."""
        result: dict[str, Any] = self._admin("PUT", "config", json=settings)
        return result

    def config(self) -> dict[str, Any]:
        result: dict[str, Any] = self._admin("GET", "config")
        return result

    def issue_oauth_token(self, client_id: str | None = None) -> dict[str, Any]:
        """Register an OAuth client with DCP's token endpoint and grant it access, as an app's user would:
        ``{client_id, client_secret, refresh_token, access_token, token_type, expires_in, token_url}``."""
        body = {"client_id": client_id} if client_id else None
        grant: dict[str, Any] = self._admin("POST", "oauth/clients", json=body)
        return {**grant, "token_url": self.urls["dcp_oauth_token"]}

    def expire_oauth_access_tokens(self) -> int:
        """Every OAuth access token issued so far expires now (their next use is a 401); answers how many."""
        return int(self._admin("POST", "oauth/expire")["expired"])

    def received(self, api: str) -> dict[str, Any]:
        """``{"requests": {route: n}, "items": {kind: {total, distinct, duplicates}}, "faults": {...}}``."""
        result: dict[str, Any] = self._admin("GET", "received", params={"api": api})
        return result

    def rate_windows(self) -> dict[str, Any]:
        """Per enforced rate limit (``"odp:POST /profiles"``): ``{"limit": n, "windows": {start: served}}``,
        the requests it let through in each of its windows."""
        result: dict[str, Any] = self._admin("GET", "rate_windows")
        return result

    def state(self, api: str) -> dict[str, Any]:
        result: dict[str, Any] = self._admin("GET", f"state/{api}")
        return result

    def close(self) -> None:
        self._session.close()
