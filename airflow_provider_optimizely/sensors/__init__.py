"""Sensors: wait for DCP to process bulk-upload files (Upload History)."""

from __future__ import annotations

from airflow_provider_optimizely.sensors.upload_history import OptimizelyUploadHistorySensor

__all__ = ["OptimizelyUploadHistorySensor"]
