"""ODP v3 bodies (docs/api-contract.md §5). Events, profiles and objects are sent as plain dicts."""

from __future__ import annotations

from typing import Any, Literal

from pydantic import Field

from airflow_provider_optimizely.models._base import VendorModel

OdpFieldType = Literal["string", "number", "boolean", "timestamp"]


class OdpProfile(VendorModel):
    email: str | None = None
    customer_id: str | None = None
    vuid: str | None = None
    first_name: str | None = None
    last_name: str | None = None
    city: str | None = None
    state: str | None = None
    country: str | None = None
    zip_code: str | None = None
    insights: dict[str, Any] | None = None
    segments: list[Any] | None = None


class OdpObject(VendorModel):
    object_id: str | None = None
    type: str | None = None
    fields: dict[str, Any] = Field(default_factory=dict)
    created: str | None = None
    updated: str | None = None


class SchemaField(VendorModel):
    name: str
    display_name: str | None = None
    type: OdpFieldType | str | None = None
    description: str | None = None


class SchemaObject(VendorModel):
    name: str
    display_name: str | None = None
    description: str | None = None
    fields: list[SchemaField] = Field(default_factory=list)


class NewSchemaObject(VendorModel):
    display_name: str
    description: str | None = None


class NewSchemaField(VendorModel):
    name: str
    display_name: str
    type: OdpFieldType
    description: str | None = None


class Segment(VendorModel):
    name: str
    description: str | None = None
    customer_count: int | None = None


class Accepted(VendorModel):
    title: str | None = None
    status: int | None = None
    timestamp: Any = None
