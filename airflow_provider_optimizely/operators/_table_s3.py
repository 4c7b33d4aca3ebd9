"""An S3Hook that signs with a DCP table's own keys (docs/api-contract.md §4.4), so uploads use the
Amazon provider as is.

DCP hands each table an access key pair for the ``optimizely-import`` bucket; no Airflow connection holds
it. The hook takes the keys from the DCP API and everything else (endpoint, region, botocore settings)
from, in order: an optional Amazon connection, the Optimizely connection's ``s3_endpoint_url`` and
``s3_region`` extras, AWS's defaults. Credentials of the Amazon connection itself are never used: DCP
accepts only the table's.

Every endpoint the upload can reach is held to the provider's rule (HTTPS, plain HTTP only to a loopback
host): the Amazon connection's ``endpoint_url`` and its ``service_config.s3.endpoint_url``, the Optimizely
connection's ``s3_endpoint_url``, and the ``AWS_ENDPOINT_URL``/``AWS_ENDPOINT_URL_S3`` variables boto3
reads. Turned-off certificate checks (``verify: false``) are logged as a warning.
"""

from __future__ import annotations

import logging
import os
from functools import cached_property
from pathlib import Path
from typing import Any

from airflow.providers.amazon.aws.hooks.s3 import S3Hook
from airflow.providers.amazon.aws.utils.connection_wrapper import AwsConnectionWrapper
from airflow.sdk.log import mask_secret

from airflow_provider_optimizely.core.rest import check_url_is_safe
from airflow_provider_optimizely.hooks.dcp import DcpS3Credentials

# Settings taken from an Amazon connection; its keys, role and profile are left out on purpose.
_AWS_SETTINGS = ("endpoint_url", "region_name", "config_kwargs", "verify", "service_config")
_ENDPOINT_VARIABLES = ("AWS_ENDPOINT_URL_S3", "AWS_ENDPOINT_URL")
DEFAULT_REGION = "us-east-1"
log = logging.getLogger(__name__)


def s3_endpoints(extra: dict[str, Any]) -> list[str]:
    """Every endpoint URL an S3 client built from ``extra`` (and this process's environment) may use."""
    endpoints = [
        extra.get("endpoint_url"),
        ((extra.get("service_config") or {}).get("s3") or {}).get("endpoint_url"),
    ]
    endpoints += [os.environ.get(name) for name in _ENDPOINT_VARIABLES]
    return [str(url) for url in endpoints if url]


class DcpTableS3Hook(S3Hook):
    """``S3Hook`` for one DCP table's import path, signed with the table's keys."""

    def __init__(self, credentials: DcpS3Credentials, aws_conn_id: str | None = None, **kwargs: Any) -> None:
        super().__init__(aws_conn_id=aws_conn_id, **kwargs)
        self.table_credentials = credentials
        mask_secret(credentials.aws_secret_access_key)
        mask_secret(credentials.aws_access_key_id)

    @cached_property
    def conn_config(self) -> AwsConnectionWrapper:
        credentials = self.table_credentials
        extra: dict[str, Any] = {}
        if self.aws_conn_id:
            aws_extra = self.get_connection(self.aws_conn_id).extra_dejson
            extra.update({key: aws_extra[key] for key in _AWS_SETTINGS if key in aws_extra})
        extra.setdefault("endpoint_url", credentials.endpoint_url)
        extra.setdefault("region_name", credentials.region or DEFAULT_REGION)
        for endpoint in s3_endpoints(extra):
            check_url_is_safe(endpoint)
        if extra.get("verify") is False or str(extra.get("verify")).lower() == "false":
            log.warning(
                "TLS certificate checks are turned off for the DCP upload (verify: false in connection %r): "
                "the table's keys and data go to an endpoint whose identity is not checked",
                self.aws_conn_id,
            )
        if extra["endpoint_url"]:
            # S3-compatible endpoints (and loopback ones) want the bucket in the path, not the host name.
            config = dict(extra.get("config_kwargs") or {})
            config.setdefault("s3", {"addressing_style": "path"})
            extra["config_kwargs"] = config
        else:
            extra.pop("endpoint_url")
        return AwsConnectionWrapper.from_connection_metadata(
            conn_id=self.aws_conn_id,
            login=credentials.aws_access_key_id,
            password=credentials.aws_secret_access_key,
            extra=extra,
        )

    def keys_under(self, bucket: str, prefix: str) -> list[str]:
        return list(self.list_keys(bucket_name=bucket, prefix=prefix))

    def upload_new(self, path: Path, bucket: str, key: str) -> None:
        """``load_file`` (a managed multipart transfer) to a key that must not exist yet; a failed
        transfer's parts are aborted rather than left in the bucket."""
        try:
            self.load_file(str(path), key=key, bucket_name=bucket, replace=False)
        except BaseException:
            self.abort_uploads_under(bucket, key)
            raise

    def abort_uploads_under(self, bucket: str, prefix: str) -> int:
        """Abort the multipart uploads left unfinished under ``prefix`` (a try killed mid-upload leaves
        its parts, which S3 keeps, and bills, until they are aborted); return how many."""
        client = self.get_conn()
        aborted = 0
        for page in client.get_paginator("list_multipart_uploads").paginate(Bucket=bucket, Prefix=prefix):
            for upload in page.get("Uploads", []):
                client.abort_multipart_upload(Bucket=bucket, Key=upload["Key"], UploadId=upload["UploadId"])
                self.log.warning("aborted an unfinished upload of s3://%s/%s", bucket, upload["Key"])
                aborted += 1
        return aborted
