"""DAGs for the bulk-upload integration tests: a file upload, and uploads whose task dies after the upload."""

from __future__ import annotations

import datetime
import tempfile
from pathlib import Path
from typing import Any

from airflow.sdk import DAG, Param

from airflow_provider_optimizely.core.bulk_upload import name_prefix
from airflow_provider_optimizely.operators.dcp import OptimizelyDcpBulkUploadOperator
from airflow_provider_optimizely.operators.dcp_bulk_upload import work_dir_name
from airflow_provider_optimizely.sensors.dcp import OptimizelyDcpUploadHistorySensor


class WorkerLostAfterSavingUpload(OptimizelyDcpBulkUploadOperator):
    """The first try dies after the upload and after task_state_store kept its key (a lost worker)."""

    def poll_until_complete(self, external_id: Any, context: Any) -> None:
        if context["ti"].try_number == 1:
            raise RuntimeError("simulated: the worker was lost after the upload")


class WorkerLostBeforeSavingUpload(OptimizelyDcpBulkUploadOperator):
    """The first try dies right after the upload, before task_state_store could keep its key."""

    def submit_job(self, context: Any) -> Any:
        result = super().submit_job(context)
        if context["ti"].try_number == 1:
            raise RuntimeError("simulated: the worker was lost between the upload and saving its key")
        return result


class KilledMidUpload(OptimizelyDcpBulkUploadOperator):
    """The first try is killed during the S3 upload: a multipart upload is started with a part sent and its
    work folder holds a file, and nothing of the try's own clean-up runs (as after ``kill -9``)."""

    def submit_job(self, context: Any) -> Any:
        ti = context["ti"]
        if ti.try_number == 1:
            credentials = self.hook.s3_credentials(int(str(self.table_id)))
            prefix = name_prefix(ti.dag_id, ti.task_id, ti.run_id, ti.map_index)
            client = self._s3(credentials).get_conn()
            key = credentials.key_for(f"{prefix}try1__0000000000000000.csv")
            upload = client.create_multipart_upload(Bucket=credentials.bucket, Key=key)
            client.upload_part(
                Bucket=credentials.bucket,
                Key=key,
                UploadId=upload["UploadId"],
                PartNumber=1,
                Body=b"x" * 1024,
            )
            folder = Path(self.work_dir or tempfile.gettempdir()) / work_dir_name(prefix)
            folder.mkdir(parents=True, exist_ok=True)
            (folder / "upload.csv").write_text("half written")
            raise RuntimeError("simulated: the worker was killed during the upload")
        return super().submit_job(context)


def _dag(dag_id: str, operator: type[OptimizelyDcpBulkUploadOperator]) -> DAG:
    with DAG(
        dag_id,
        schedule=None,
        start_date=datetime.datetime(2026, 1, 1),
        catchup=False,
        render_template_as_native_obj=True,
        params={"table_id": Param(0, type="integer"), "path": Param("", type="string"), "max_rejected": 0},
    ) as dag:
        upload = operator(
            task_id="upload",
            table_id="{{ params.table_id }}",
            path="{{ params.path }}",
            max_rejected="{{ params.max_rejected }}",
            retries=1,
            retry_delay=datetime.timedelta(seconds=0),
        )
        OptimizelyDcpUploadHistorySensor(task_id="wait", uploads=upload.output, poll_interval=0.1, timeout=60)
    return dag


bulk_upload_file = _dag("bulk_upload_file", OptimizelyDcpBulkUploadOperator)
bulk_upload_lost_after_saving = _dag("bulk_upload_lost_after_saving", WorkerLostAfterSavingUpload)
bulk_upload_lost_before_saving = _dag("bulk_upload_lost_before_saving", WorkerLostBeforeSavingUpload)
bulk_upload_killed_mid_upload = _dag("bulk_upload_killed_mid_upload", KilledMidUpload)
