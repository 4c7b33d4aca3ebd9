"""The base of every operator: one API, one typed hook, one connection id.

An operator names its hook class (``hook_class``); ``self.hook`` is then that class to mypy and to an IDE,
built once, on first use, in the worker: never while the DAG is parsed. Each operator takes only its own
arguments, so a misplaced one (``scope=`` on a DCP operator) is a ``TypeError`` when the DAG is parsed.
"""

from __future__ import annotations

from collections.abc import Sequence
from functools import cached_property
from typing import Any, Generic, TypeVar

from airflow.sdk import BaseOperator

from airflow_provider_optimizely.hooks.base import OptimizelyBaseHook

HookT = TypeVar("HookT", bound=OptimizelyBaseHook)
_TRUE, _FALSE = ("true", "1", "yes"), ("false", "0", "no", "")


def as_bool(value: Any, name: str) -> bool:
    """A flag that may arrive rendered from a template as text: ``"false"`` is False, never truthy."""
    if isinstance(value, str):
        if value.strip().lower() in _TRUE:
            return True
        if value.strip().lower() in _FALSE:
            return False
        raise ValueError(f"{name} must be true or false, got {value!r}")
    return bool(value)


class OptimizelyBaseOperator(BaseOperator, Generic[HookT]):
    """An operator of one API. ``conn_id`` defaults to its hook's default connection id.

    :param conn_id: the Airflow connection of the API (templated).
    """

    hook_class: type[HookT]
    template_fields: Sequence[str] = ("conn_id",)

    def __init__(self, *, conn_id: str | None = None, **kwargs: Any) -> None:
        super().__init__(**kwargs)
        self.conn_id = conn_id or self.hook_class.default_conn_name

    @cached_property
    def hook(self) -> HookT:
        return self.hook_class(self.conn_id)
