"""OptimizelyBaseHook: lazy connection, one client, masking, settings precedence, config errors."""

from __future__ import annotations

import logging
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor

import pytest
from airflow.sdk import Connection
from airflow.sdk._shared.secrets_masker import redact

from airflow_provider_optimizely.core.errors import OptimizelyConfigError
from airflow_provider_optimizely.core.ratelimit import Budget
from airflow_provider_optimizely.hooks.dcp import OptimizelyDcpHook
from airflow_provider_optimizely.hooks.odp import OptimizelyOdpHook
from airflow_provider_optimizely.hooks.optimove import OptimoveHook
from tests.http_test_server import Reply, ScriptedServer


def test_init_reads_no_connection(monkeypatch: pytest.MonkeyPatch) -> None:
    def refuse(*args: object, **kwargs: object) -> None:
        raise AssertionError("the connection was read in __init__")

    monkeypatch.setattr(OptimizelyDcpHook, "get_connection", refuse)
    hook = OptimizelyDcpHook("anything", max_attempts=2)
    assert hook.conn_id == "anything"


def test_airflow_passes_the_conn_id_under_conn_name_attr(set_connection: Callable[..., None]) -> None:
    set_connection("my_optimove", "optimove", "https://api.example.com/v1", "k", brand_api_key="b")
    hook = Connection.get("my_optimove").get_hook()
    assert isinstance(hook, OptimoveHook)
    assert hook.conn_id == "my_optimove"
    with pytest.raises(TypeError):
        OptimoveHook(optimizely_conn_id="wrong_kwarg")


def test_secrets_are_registered_with_the_masker(set_connection: Callable[..., None]) -> None:
    set_connection(
        "masked_odp",
        "optimizely_odp",
        "https://api.zaius.com/v3",
        "priv-canary-1",
        public_api_key="pub-canary-2",
    )
    set_connection(
        "masked_optimove", "optimove", "https://x.example/v1", "api-canary-3", brand_api_key="brand-canary-4"
    )
    _ = OptimizelyOdpHook("masked_odp").client
    _ = OptimoveHook("masked_optimove").client
    line = "keys priv-canary-1 pub-canary-2 api-canary-3 brand-canary-4"
    assert redact(line) == "keys *** *** *** ***"


def test_one_client_per_hook_even_when_threads_race(set_connection: Callable[..., None]) -> None:
    set_connection("race", "optimizely", "https://api.optimizely.com/experiment/v1", "t")
    hook = OptimizelyDcpHook("race")
    with ThreadPoolExecutor(max_workers=8) as pool:
        clients = set(map(id, pool.map(lambda _: hook.client, range(32))))
    assert len(clients) == 1


def test_argument_beats_extra_beats_default(set_connection: Callable[..., None]) -> None:
    set_connection(
        "bounds", "optimizely", "https://a.example/v1", "t", max_attempts=7, requests_per_minute=30
    )
    from_extra = OptimizelyDcpHook("bounds")
    assert from_extra.retry_policy().max_attempts == 7
    assert from_extra.budget() == Budget(30, 60.0)
    from_argument = OptimizelyDcpHook("bounds", max_attempts=2, requests_per_second=5)
    assert from_argument.retry_policy().max_attempts == 2
    assert from_argument.budget() == Budget(5, 1.0)
    set_connection("plain", "optimizely", "https://a.example/v1", "t")
    defaults = OptimizelyDcpHook("plain")
    assert defaults.retry_policy().max_attempts == 5
    assert defaults.budget() is None  # docs/api-contract.md §3: DCP publishes no limit
    assert defaults.retry_policy().default_retry_after[429] == 60.0


def test_plain_http_to_a_remote_host_is_refused(set_connection: Callable[..., None]) -> None:
    set_connection("insecure", "optimizely", "http://api.optimizely.com/experiment/v1", "t")
    with pytest.raises(OptimizelyConfigError, match="https"):
        _ = OptimizelyDcpHook("insecure").client


def test_a_host_without_scheme_is_refused(set_connection: Callable[..., None]) -> None:
    set_connection("schemeless", "optimove", "api.opti-x.optimove.net/api", "k", brand_api_key="b")
    with pytest.raises(OptimizelyConfigError, match="scheme"):
        _ = OptimoveHook("schemeless").client


def test_missing_keys_are_named_without_values(set_connection: Callable[..., None]) -> None:
    set_connection("no_brand", "optimove", "https://x.example/v1", "k-secret")
    with pytest.raises(OptimizelyConfigError, match="brand_api_key") as caught:
        _ = OptimoveHook("no_brand").client
    assert "k-secret" not in str(caught.value)


def test_test_connection_reports_refused_credentials_without_them(
    server: ScriptedServer, set_connection: Callable[..., None], caplog: pytest.LogCaptureFixture
) -> None:
    server.handle(lambda request: Reply(401, {"message": "bad key", "code": "UNAUTHORIZED", "uuid": "u"}))
    set_connection("refused", "optimizely", f"{server.url}/v1", "tok-canary-5")
    with caplog.at_level(logging.DEBUG):
        ok, message = OptimizelyDcpHook("refused").test_connection()
    assert ok is False
    assert "401" in message
    assert "tok-canary-5" not in message + caplog.text
