"""Triggers, one module per API: the deferrable half of DCP's Upload History sensor (``triggers.dcp``)."""

from __future__ import annotations

from airflow_provider_optimizely.triggers.dcp import OptimizelyDcpUploadHistoryTrigger

__all__ = ["OptimizelyDcpUploadHistoryTrigger"]
