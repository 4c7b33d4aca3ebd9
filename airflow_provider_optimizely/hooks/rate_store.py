"""The shared rate budget's store, found from the connection's extra ``rate_limit_store_conn_id``.

That extra names an Airflow Redis connection (``apache-airflow-providers-redis``, the ``[redis]`` extra of
this package); ``rate_limit_workers`` (default 2) is how many workers are expected to share the budget,
each of which takes ``1/rate_limit_workers`` of it if the store becomes unreachable. The limiter itself
is ``core.shared_budget`` (Airflow-free); this module only turns a connection id into a Redis client.
"""

from __future__ import annotations

import threading
from collections.abc import Iterable
from typing import Any

from airflow_provider_optimizely.core.errors import OptimizelyConfigError
from airflow_provider_optimizely.core.ratelimit import Budget, RateLimiter

STORE_EXTRA = "rate_limit_store_conn_id"
WORKERS_EXTRA = "rate_limit_workers"
# A store that does not answer within this long is taken as unreachable (the limiter then degrades)
# rather than holding every sending thread.
_SOCKET_TIMEOUT_SECONDS = 2.0

_clients: dict[str, Any] = {}
_clients_lock = threading.Lock()


def redis_client(redis_conn_id: str) -> Any:
    """One redis-py client (one connection pool) per Redis connection id, for this process."""
    with _clients_lock:
        client = _clients.get(redis_conn_id)
        if client is None:
            try:
                from airflow.providers.redis.hooks.redis import RedisHook
            except ImportError:
                raise OptimizelyConfigError(
                    f"a shared rate budget ({STORE_EXTRA}={redis_conn_id!r}) needs the Redis provider: "
                    "pip install 'airflow-provider-optimizely[redis]'"
                ) from None
            client = RedisHook(redis_conn_id=redis_conn_id).get_conn()
            pool_kwargs = getattr(getattr(client, "connection_pool", None), "connection_kwargs", None)
            if isinstance(pool_kwargs, dict):
                pool_kwargs.setdefault("socket_timeout", _SOCKET_TIMEOUT_SECONDS)
                pool_kwargs.setdefault("socket_connect_timeout", _SOCKET_TIMEOUT_SECONDS)
            if hasattr(client, "set_retry"):
                # One quick retry for a blip; redis-py's default (3, backing off) held every sending thread
                # about 6 s before the limiter could degrade.
                from redis.backoff import ConstantBackoff
                from redis.retry import Retry

                client.set_retry(Retry(ConstantBackoff(0.05), 1))
            _clients[redis_conn_id] = client
        return client


def rate_limiter_for(
    extras: dict[str, Any],
    budget: Budget | None,
    *,
    api: str,
    host: str,
    identity: Iterable[str],
    route: str = "",
) -> RateLimiter:
    """A limiter shared through the store the extras name, else one of this process alone."""
    store = extras.get(STORE_EXTRA)
    if not store:
        return RateLimiter(budget)
    try:
        from airflow_provider_optimizely.core.shared_budget import SharedRateLimiter, account_key
    except ImportError:
        raise OptimizelyConfigError(
            f"a shared rate budget ({STORE_EXTRA}={store!r}) needs the limits library: "
            "pip install 'airflow-provider-optimizely[redis]'"
        ) from None
    workers = extras.get(WORKERS_EXTRA) or 2
    try:
        workers = int(workers)
    except (TypeError, ValueError):
        raise OptimizelyConfigError(f"{WORKERS_EXTRA} must be a whole number, got {workers!r}") from None
    return SharedRateLimiter(
        budget,
        redis=redis_client(str(store)),
        key=account_key(api, host, identity, route),
        workers=workers,
    )
