"""The Airflow side of a DCP sync's bulk channel (``core.dcp_channel``): the table's import path, signed
with the table's own keys through the Amazon provider (``operators._table_s3``), and its Upload History.
"""

from __future__ import annotations

import uuid
from collections.abc import Iterator, Mapping
from pathlib import Path
from typing import Any

from airflow_provider_optimizely.core.bulk_upload import name_prefix
from airflow_provider_optimizely.hooks.dcp import OptimizelyDcpHook
from airflow_provider_optimizely.operators._table_s3 import DcpTableS3Hook


class TableImportPath:
    """``core.dcp_channel.BulkTarget`` for one DCP table and one task instance's run."""

    def __init__(
        self,
        hook: OptimizelyDcpHook,
        table_id: int,
        ti: Any,
        *,
        aws_conn_id: str | None = None,
        transfer_config_args: Mapping[str, Any] | None = None,
    ) -> None:
        self.hook = hook
        self.table_id = table_id
        self.credentials = hook.s3_credentials(table_id)
        self.s3 = DcpTableS3Hook(
            self.credentials, aws_conn_id=aws_conn_id, transfer_config_args=dict(transfer_config_args or {})
        )
        if ti is None:  # execute() called by a script: no run to name the file after, and no retry
            run_prefix = name_prefix("script", "dcp-sync", f"run-{uuid.uuid4().hex}", None)
            self.try_number = 1
        else:
            run_prefix = name_prefix(ti.dag_id, ti.task_id, ti.run_id, ti.map_index)
            self.try_number = int(ti.try_number)
        self.prefix = self.credentials.key_for(run_prefix)
        # What a killed try left half-uploaded under this run's prefix.
        self.s3.abort_uploads_under(self.credentials.bucket, self.prefix)

    def keys_under(self, prefix: str) -> list[str]:
        return self.s3.keys_under(self.credentials.bucket, prefix)

    def upload(self, path: Path, key: str) -> None:
        self.s3.upload_new(path, self.credentials.bucket, key)

    def history(self) -> Iterator[dict[str, Any]]:
        return (entry.model_dump(mode="json") for entry in self.hook.list_upload_history(self.table_id))
