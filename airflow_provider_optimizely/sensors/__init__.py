"""Sensors, one module per API: DCP's Upload History (``sensors.dcp``)."""

from __future__ import annotations

from airflow_provider_optimizely.sensors.dcp import OptimizelyDcpUploadHistorySensor

__all__ = ["OptimizelyDcpUploadHistorySensor"]
