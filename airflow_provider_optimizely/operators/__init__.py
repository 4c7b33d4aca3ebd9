"""Operators, one module per API as in ``hooks/``: ``operators.dcp``, ``operators.odp``,
``operators.profile_store``, ``operators.optimove``. Each is named by product and action.

The names are also importable from here. Imports are lazy, so that a DAG file importing one operator
does not pay for every API's at parse time.
"""

from __future__ import annotations

import importlib
from typing import Any

_OPERATORS = {
    "OptimizelyDcpCreateTableOperator": "dcp",
    "OptimizelyDcpRegisterAttributesOperator": "dcp",
    "OptimizelyDcpUpsertProfilesOperator": "dcp",
    "OptimizelyDcpBulkUploadOperator": "dcp",
    "OptimizelyOdpCreateObjectTypeOperator": "odp",
    "OptimizelyOdpRegisterFieldsOperator": "odp",
    "OptimizelyOdpUpsertProfilesOperator": "odp",
    "OptimizelyOdpSendEventsOperator": "odp",
    "OptimizelyProfileStorePutProfilesOperator": "profile_store",
    "OptimizelyProfileStoreDeleteProfilesOperator": "profile_store",
    "OptimoveCreateDataConnectionOperator": "optimove",
    "OptimoveUploadRecordsOperator": "optimove",
}

__all__ = sorted(_OPERATORS)


def __getattr__(name: str) -> Any:
    if name not in _OPERATORS:
        raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
    return getattr(importlib.import_module(f"{__name__}.{_OPERATORS[name]}"), name)
