"""The S3 endpoint answers as the ``optimizely-import`` bucket would (seed 000, docs/api-contract.md §4.4):
SigV4 with the
table's own keys, under the table's own ``s3_path``; anything else is refused before moto sees it."""

from __future__ import annotations

import hashlib
import io
from datetime import datetime, timedelta, timezone
from typing import Any

import pytest
import requests
from botocore.auth import S3SigV4Auth
from botocore.awsrequest import AWSRequest
from botocore.credentials import Credentials
from botocore.exceptions import ClientError

from airflow_provider_optimizely.emulator.common import EmulatorSettings
from airflow_provider_optimizely.emulator.dcp_state import DcpState
from airflow_provider_optimizely.emulator.s3_gateway import Authorizer, S3Refusal, S3Request
from tests.emulator.conftest import Dcp, Table

BUCKET = "optimizely-import"


def table_client(dcp: Dcp, table: dict[str, Any]) -> Any:
    return dcp.emulator.s3_client(table["aws_access_key"], table["aws_secret_key"])


def refused(call: Any) -> tuple[int, str]:
    with pytest.raises(ClientError) as caught:
        call()
    response = caught.value.response
    return response["ResponseMetadata"]["HTTPStatusCode"], response["Error"]["Code"]


def test_a_tables_keys_put_get_head_and_list_under_its_own_path(dcp: Dcp, crm: Table):
    """Seed 000: "Any library that makes AWS S3 GET and PUT requests via SSL and using SigV4", with the
    table's AWS keys, under ``optimizely-import/<s3_path>``."""
    s3 = table_client(dcp, crm.table)
    key = f"{crm.table['s3_path']}/a b+c.csv"
    s3.put_object(Bucket=BUCKET, Key=key, Body=b"customerId\nc1\n")
    assert s3.get_object(Bucket=BUCKET, Key=key)["Body"].read() == b"customerId\nc1\n"
    assert s3.head_object(Bucket=BUCKET, Key=key)["ContentLength"] == 14
    listed = s3.list_objects_v2(Bucket=BUCKET, Prefix=crm.table["s3_path"] + "/")
    assert [o["Key"] for o in listed["Contents"]] == [key]
    # A managed (multipart) upload, as the Amazon provider's S3Hook.load_file makes for a large file.
    s3.upload_fileobj(io.BytesIO(b"x" * (9 * 1024 * 1024)), BUCKET, f"{crm.table['s3_path']}/big.csv")


def test_an_unsigned_put_is_access_denied(dcp: Dcp, crm: Table):
    response = requests.put(
        f"{dcp.emulator.s3_endpoint_url}/{BUCKET}/{crm.table['s3_path']}/anon.csv", data=b"x", timeout=10
    )
    assert response.status_code == 403
    assert "<Code>AccessDenied</Code>" in response.text
    assert dcp.emulator.s3_admin_client().list_objects_v2(Bucket=BUCKET).get("KeyCount") == 0


def test_another_tables_keys_or_path_are_refused(dcp: Dcp, crm: Table):
    """docs/api-contract.md §4.4: written "with the table's own aws_access_key/aws_secret_key" under its
    ``s3_path``."""
    other = dcp.table(crm.service_id, "other")
    mine = table_client(dcp, crm.table)
    theirs_path = f"{other['s3_path']}/x.csv"
    assert refused(lambda: mine.put_object(Bucket=BUCKET, Key=theirs_path, Body=b"x")) == (
        403,
        "AccessDenied",
    )
    assert refused(lambda: mine.list_objects_v2(Bucket=BUCKET)) == (403, "AccessDenied")
    assert refused(lambda: mine.put_object(Bucket="elsewhere", Key="x.csv", Body=b"x")) == (
        403,
        "AccessDenied",
    )
    assert refused(lambda: mine.create_bucket(Bucket="mine")) == (403, "AccessDenied")
    own = f"{crm.table['s3_path']}/x.csv"
    mine.put_object(Bucket=BUCKET, Key=own, Body=b"x")
    assert refused(lambda: mine.delete_object(Bucket=BUCKET, Key=own)) == (403, "AccessDenied")


@pytest.mark.parametrize("whose", ["unknown", "service", "archived table"])
def test_keys_that_are_not_a_live_tables_are_invalid(dcp: Dcp, crm: Table, whose: str):
    keys = {
        "unknown": ("AKIAEXAMPLE", "secret"),
        "service": (crm.service["aws_access_key"], crm.service["aws_secret_key"]),
    }
    if whose == "archived table":
        dcp.rest("DELETE", f"dcp_datasources/{crm.id}")
        keys[whose] = (crm.table["aws_access_key"], crm.table["aws_secret_key"])
    s3 = dcp.emulator.s3_client(*keys[whose])
    put = lambda: s3.put_object(Bucket=BUCKET, Key=f"{crm.table['s3_path']}/x.csv", Body=b"x")  # noqa: E731
    assert refused(put) == (403, "InvalidAccessKeyId")


def test_a_wrong_secret_does_not_match_the_signature(dcp: Dcp, crm: Table):
    s3 = dcp.emulator.s3_client(crm.table["aws_access_key"], "not-the-secret")
    put = lambda: s3.put_object(Bucket=BUCKET, Key=f"{crm.table['s3_path']}/x.csv", Body=b"x")  # noqa: E731
    assert refused(put) == (403, "SignatureDoesNotMatch")


def test_another_region_is_a_malformed_credential(dcp: Dcp, crm: Table):
    import boto3

    s3 = boto3.client(
        "s3",
        endpoint_url=dcp.emulator.s3_endpoint_url,
        region_name="eu-west-1",
        aws_access_key_id=crm.table["aws_access_key"],
        aws_secret_access_key=crm.table["aws_secret_key"],
    )
    put = lambda: s3.put_object(Bucket=BUCKET, Key=f"{crm.table['s3_path']}/x.csv", Body=b"x")  # noqa: E731
    assert refused(put) == (400, "AuthorizationHeaderMalformed")


def test_sigv2_is_not_supported(dcp: Dcp, crm: Table):
    """Seed 000 asks for SigV4; a SigV2 presigned URL (boto3's default for presigning S3) is refused."""
    s3 = table_client(dcp, crm.table)
    key = f"{crm.table['s3_path']}/x.csv"
    s3.put_object(Bucket=BUCKET, Key=key, Body=b"x")
    url = s3.generate_presigned_url("get_object", Params={"Bucket": BUCKET, "Key": key})
    assert "AWSAccessKeyId=" in url
    answer = requests.get(url, timeout=10)
    assert answer.status_code == 400 and "AWS4-HMAC-SHA256" in answer.text


def test_a_sigv4_presigned_url_works_until_it_expires(dcp: Dcp, crm: Table):
    import boto3
    from botocore.config import Config

    s3 = boto3.client(
        "s3",
        endpoint_url=dcp.emulator.s3_endpoint_url,
        region_name="us-east-1",
        aws_access_key_id=crm.table["aws_access_key"],
        aws_secret_access_key=crm.table["aws_secret_key"],
        config=Config(signature_version="s3v4", s3={"addressing_style": "path"}),
    )
    key = f"{crm.table['s3_path']}/x (1).csv"
    s3.put_object(Bucket=BUCKET, Key=key, Body=b"abc")
    url = s3.generate_presigned_url("get_object", Params={"Bucket": BUCKET, "Key": key}, ExpiresIn=60)
    assert requests.get(url, timeout=10).content == b"abc"


# --- the checks themselves, on requests signed by botocore ---------------------------------------------


def signed(
    settings: EmulatorSettings,
    table: dict[str, Any],
    body: bytes,
    *,
    at: datetime | None = None,
    **extra: str,
) -> S3Request:
    """A PUT as botocore signs it (header auth, payload hashed), seen as the gate sees it."""
    url = f"http://127.0.0.1:9/{settings.s3_bucket}/{table['s3_path']}/f.csv"
    request = AWSRequest("PUT", url, data=body, headers={"Host": "127.0.0.1:9"})
    request.headers["x-amz-content-sha256"] = hashlib.sha256(body).hexdigest()
    credentials = Credentials(table["aws_access_key"], table["aws_secret_key"])
    signer = S3SigV4Auth(credentials, "s3", settings.s3_region)
    if at is None:
        signer.add_auth(request)
    else:
        # add_auth stamps "now": sign the way it does, at another time.
        request.context["timestamp"] = at.strftime("%Y%m%dT%H%M%SZ")
        signer._modify_request_before_signing(request)
        string_to_sign = signer.string_to_sign(request, signer.canonical_request(request))
        signer._inject_signature_to_request(request, signer.signature(string_to_sign, request))
    headers = {name.lower(): str(value) for name, value in request.headers.items()}
    headers.update(extra)
    return S3Request("PUT", f"/{settings.s3_bucket}/{table['s3_path']}/f.csv", "", headers, body)


@pytest.fixture
def gate() -> tuple[Authorizer, dict[str, Any]]:
    state, settings = DcpState(), EmulatorSettings()
    service = state.create_service("s")
    table = state.create_table(service["id"], {"name": "t", "keyfield_locator_type": "uid"})
    return Authorizer(state, settings), table


def test_a_botocore_signature_passes_the_gate(gate):
    authorizer, table = gate
    authorizer.check(signed(authorizer.settings, table, b"customerId\n"))


def test_a_body_that_is_not_the_signed_one_is_refused(gate):
    authorizer, table = gate
    request = signed(authorizer.settings, table, b"customerId\n")
    tampered = S3Request(request.method, request.raw_path, "", request.headers, b"customerId\nc2\n")
    with pytest.raises(S3Refusal) as caught:
        authorizer.check(tampered)
    assert (caught.value.status, caught.value.code) == (400, "XAmzContentSHA256Mismatch")


def test_a_signed_header_changed_on_the_way_breaks_the_signature(gate):
    authorizer, table = gate
    request = signed(authorizer.settings, table, b"x", host="evil:9")
    with pytest.raises(S3Refusal) as caught:
        authorizer.check(request)
    assert caught.value.code == "SignatureDoesNotMatch"


def test_a_request_signed_20_minutes_ago_is_too_skewed(gate):
    authorizer, table = gate
    at = datetime.now(timezone.utc) - timedelta(minutes=20)
    with pytest.raises(S3Refusal) as caught:
        authorizer.check(signed(authorizer.settings, table, b"x", at=at))
    assert (caught.value.status, caught.value.code) == (403, "RequestTimeTooSkewed")
    authorizer.check(signed(authorizer.settings, table, b"x", at=at + timedelta(minutes=10)))
