"""Triggers: the deferrable half of the Upload History sensor."""

from __future__ import annotations

from airflow_provider_optimizely.triggers.upload_history import OptimizelyUploadHistoryTrigger

__all__ = ["OptimizelyUploadHistoryTrigger"]
