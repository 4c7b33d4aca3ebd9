"""Operators, named by capability: the connection's type picks the API (API.md §1).

Imports are lazy so that a DAG file importing one operator does not pay for all of them at parse time.
"""

from __future__ import annotations

import importlib
from typing import Any

_OPERATORS = {
    "OptimizelyCreateTableOperator": "tables",
    "OptimizelyRegisterAttributesOperator": "tables",
    "OptimizelyBulkUploadOperator": "bulk_upload",
    "OptimizelyUpsertProfilesOperator": "profiles",
    "OptimizelySendEventsOperator": "events",
    "OptimizelyDeleteProfilesOperator": "delete",
}

__all__ = sorted(_OPERATORS)


def __getattr__(name: str) -> Any:
    if name not in _OPERATORS:
        raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
    return getattr(importlib.import_module(f"{__name__}.{_OPERATORS[name]}"), name)
