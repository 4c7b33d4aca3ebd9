"""Profile Store v1.0 bodies (docs/api-contract.md §6). The vendor's field names are PascalCase; we keep
them."""

from __future__ import annotations

from typing import Any

from pydantic import Field

from airflow_provider_optimizely.models._base import VendorModel


class StoredProfile(VendorModel):
    ProfileId: str | None = None
    DeviceIds: list[str] = Field(default_factory=list)
    Name: str | None = None
    ProfileManager: str | None = None
    FirstSeen: str | None = None
    LastSeen: str | None = None
    Visits: int | None = Field(default=None, ge=0)
    UpdateTime: str | None = None
    Scope: str | None = None
    Info: dict[str, Any] = Field(default_factory=dict)
    ContactInformation: list[str] = Field(default_factory=list)
    Payload: dict[str, Any] = Field(default_factory=dict)

    def to_body(self) -> dict:
        """The profile as a POST or PUT body: without ``ProfileId`` and ``UpdateTime``, which the server
        sets (a body that carries them is refused)."""
        body = super().to_body()
        body.pop("ProfileId", None)
        body.pop("UpdateTime", None)
        return body
