"""Optimove Data Connections bodies (docs/api-contract.md §7). Records are sent as plain dicts (batches
of 5000)."""

from __future__ import annotations

from airflow_provider_optimizely.models._base import VendorModel


class NewDataConnection(VendorModel):
    name: str
    primary_key: str
    description: str = ""


class DataConnection(VendorModel):
    data_connection_uuid: str
