"""DCP bodies (docs/api-contract.md §4): services, tables (datasources), attributes, profiles, aliases,
Upload History."""

from __future__ import annotations

from typing import Any, Literal

from pydantic import Field, SecretStr

from airflow_provider_optimizely.models._base import VendorModel

KeyfieldLocatorType = Literal["cookie", "query parameter", "js_variable", "uid"]
AttributeDatatype = Literal["string", "bool", "long", "double", "datetime"]
DatetimeFormat = Literal["yyyy-mm-dd", "yyyy-mm-ddThh:mm:ssZ", "epoch"]
UploadStatus = Literal["pending", "processing", "processed", "failed"]


class DcpService(VendorModel):
    id: int
    name: str
    account_id: int | None = None
    archived: bool = False
    s3_path: str | None = None
    # Secrets stay SecretStr so a repr, a log line or an XCom of the model never shows them.
    aws_access_key: str | None = None
    aws_secret_key: SecretStr | None = None
    created: str | None = None
    last_modified: str | None = None


class DcpAttribute(VendorModel):
    id: int | None = None
    name: str
    datatype: AttributeDatatype | str
    description: str | None = None
    format: str | None = None
    archived: bool = False
    dcp_datasource_id: int | None = None


class DcpTable(VendorModel):
    """A DCP table (the API calls it a datasource)."""

    id: int
    name: str
    dcp_service_id: int | None = None
    description: str | None = None
    keyfield_locator_type: KeyfieldLocatorType | str | None = None
    keyfield_locator_name: str | None = None
    is_optimizely: bool = False
    archived: bool = False
    attributes: list[DcpAttribute | dict[str, Any] | int] = Field(default_factory=list)
    s3_path: str | None = None
    aws_access_key: str | None = None
    aws_secret_key: SecretStr | None = None
    created: str | None = None
    last_modified: str | None = None


class NewTable(VendorModel):
    name: str
    keyfield_locator_type: KeyfieldLocatorType
    keyfield_locator_name: str | None = Field(default=None, pattern=r"^[a-zA-Z_][a-zA-Z_0-9$]*$")
    description: str | None = None


class NewAttribute(VendorModel):
    name: str
    datatype: AttributeDatatype
    description: str | None = None
    format: DatetimeFormat | None = None


class CustomerProfile(VendorModel):
    data: dict[str, Any] = Field(default_factory=dict)
    dcpServiceId: int | str | None = None
    datasourceId: int | str | None = None
    customerId: str | None = None


class Alias(VendorModel):
    data: dict[str, Any] = Field(default_factory=dict)


class UploadError(VendorModel):
    row: int | None = None
    column: str | None = None
    message: str = ""


class UploadHistoryEntry(VendorModel):
    file_name: str
    s3_key: str | None = None
    status: UploadStatus | str
    rows_total: int | None = None
    rows_processed: int | None = None
    rows_failed: int | None = None
    errors: list[UploadError] = Field(default_factory=list)
    uploaded_at: str | None = None
    processed_at: str | None = None
