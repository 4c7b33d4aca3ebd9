"""DCP profile syncs by the cheaper channel for the size of the change set: the profile API or one
bulk-upload file (``choice``, ``spool``, ``bulk``, ``sync``; docs/dcp-channel.md)."""

from airflow_provider_optimizely.core.dcp_channel.bulk import BulkTarget, FileOutcome, UploadHistoryTimeout
from airflow_provider_optimizely.core.dcp_channel.choice import (
    DEFAULT_BULK_THRESHOLD,
    METHODS,
    ChannelChoice,
    choose_channel,
    parse_method,
    parse_threshold,
)
from airflow_provider_optimizely.core.dcp_channel.sync import ChannelSettings, sync_by_channel

__all__ = [
    "DEFAULT_BULK_THRESHOLD",
    "METHODS",
    "BulkTarget",
    "ChannelChoice",
    "ChannelSettings",
    "FileOutcome",
    "UploadHistoryTimeout",
    "choose_channel",
    "parse_method",
    "parse_threshold",
    "sync_by_channel",
]
