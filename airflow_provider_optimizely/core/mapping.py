"""From a source row to the fields an API writes: the key, the column mapping, JSON-ready values.

A column mapping is ``{source column: attribute}`` (a list means the same names). Without one, every
column of the row but the identifier is written under its own name. A mapped column a row lacks is no
value for that row (JSON Lines rows may differ), never an error.
"""

from __future__ import annotations

import uuid
from collections.abc import Callable, Iterator, Mapping, Sequence
from decimal import Decimal
from typing import Any

from airflow_provider_optimizely.core import values
from airflow_provider_optimizely.core.errors import InvalidIdentifierError
from airflow_provider_optimizely.core.sync import RowRejected, SyncConfigError
from airflow_provider_optimizely.core.urls import all_path_segments, path_segment
from airflow_provider_optimizely.core.values import not_finite, utc_iso

__all__ = [
    "json_object_cell",
    "json_value",
    "key_of",
    "mapped_values",
    "normalise_mapping",
    "text_list_cell",
    "utc_iso",
]

# Types a JSON body carries as they are (a float only when finite: ``core.values`` checks it).
_JSON_NATIVE = frozenset({str, int, bool, type(None)})


def normalise_mapping(columns: Mapping[str, str] | Sequence[str] | None, what: str) -> dict[str, str] | None:
    """``{source: target}`` from a mapping, a list of names, or None (no mapping)."""
    if columns is None:
        return None
    if isinstance(columns, str):
        raise SyncConfigError(f"{what} is a mapping of source column to name, or a list of columns")
    if isinstance(columns, Mapping):
        pairs = {str(source): str(target) for source, target in columns.items()}
    else:
        pairs = {str(name): str(name) for name in columns}
    if not pairs:
        raise SyncConfigError(f"{what} is empty: give at least one column, or leave it out")
    targets = list(pairs.values())
    if len(set(targets)) != len(targets):
        raise SyncConfigError(f"{what} maps two columns to one name: {sorted(targets)}")
    return pairs


def mapped_values(
    row: Mapping[str, Any], mapping: Mapping[str, str] | None, skip: str | None
) -> Iterator[tuple[str, str, Any]]:
    """``(source column, target, value)`` for each column to write; ``skip`` is the identifier column."""
    if mapping is None:
        for column, value in row.items():
            if column != skip:
                yield column, column, value
        return
    for column, target in mapping.items():
        if column in row:
            yield column, target, row[column]


def mapped_columns(
    columns: Sequence[str], mapping: Mapping[str, str] | None, skip: str | None
) -> list[tuple[str, str]]:
    """``(source column, target)`` of each column to write, in ``mapped_values``'s order."""
    if mapping is None:
        return [(column, column) for column in columns if column != skip]
    return [(column, target) for column, target in mapping.items() if column in columns]


def require_columns(columns: Sequence[str], needed: Sequence[str], what: str) -> None:
    """``SyncConfigError`` unless the source has every column in ``needed`` (``what`` says what each is)."""
    missing = [name for name in needed if name not in columns]
    if missing:
        raise SyncConfigError(
            f"the source has no column {', '.join(map(repr, missing))} ({what}); its columns are "
            f"{', '.join(map(repr, columns)) or 'none'}"
        )


def unmapped_targets(
    columns: Sequence[str], mapping: Mapping[str, str] | None, skip: str, known: Callable[[str], bool]
) -> list[str]:
    """The source columns that would be written under a name the target doesn't have (no mapping: every
    column but ``skip`` goes under its own name; a mapping's targets are checked when it is given)."""
    if mapping is not None:
        return []
    return [column for column in columns if column != skip and not known(column)]


def key_of(row: Mapping[str, Any], column: str) -> str:
    """The row's identifier as text, or ``RowRejected`` naming the column."""
    if column not in row:
        raise RowRejected(f"no identifier: the row has no column {column!r}", column=column)
    value = row[column]
    if value is None or (isinstance(value, str) and not value.strip()):
        raise RowRejected("no identifier: the value is empty", column=column)
    if isinstance(value, bool) or not isinstance(value, (str, int, float, Decimal, uuid.UUID)):
        raise RowRejected(f"an identifier is text or a number, not {type(value).__name__}", column=column)
    if not_finite(value):
        raise RowRejected(f"an identifier is text or a number, not {value}", column=column)
    if isinstance(value, float) and value.is_integer():
        value = int(value)  # 42.0 from a float column is the id 42
    elif isinstance(value, Decimal) and value == value.to_integral_value():
        value = int(value)
    return str(value)


def keys_of_column(values: Sequence[Any]) -> list[str] | None:
    """``key_of`` for a column of identifiers at once, when each is plain (all non-blank text, or all
    ints); None when one needs ``key_of``'s closer look (a row that it would reject, say)."""
    kinds = set(map(type, values))
    if kinds == {str}:
        return list(values) if all(map(str.strip, values)) else None
    if kinds == {int}:
        return list(map(str, values))
    return None


def path_key_of(row: Mapping[str, Any], column: str, slot: str) -> str:
    """``key_of``, for a key that goes into a URL path (a DCP customer id, a Profile Store profile id):
    one that can't be a path segment (``.``, ``..``) is rejected with the row, never sent."""
    key = key_of(row, column)
    try:
        path_segment(key, slot)
    except InvalidIdentifierError as exc:
        raise RowRejected(str(exc), column=column, key=key) from None
    return key


def path_keys_of_column(values: Sequence[Any]) -> list[str] | None:
    """``path_key_of`` for a column of identifiers at once: ``keys_of_column``, and None unless each key
    is a path segment (``path_segment``'s checks, made on the whole column)."""
    keys = keys_of_column(values)
    return keys if keys is not None and all_path_segments(keys) else None


def json_value(value: Any, column: str | None = None) -> Any:
    """``value`` as JSON carries it, every digit and instant kept (``core.values.json_value``), or
    ``RowRejected`` naming ``column`` when no JSON value is faithful (a NaN, a driver's own object)."""
    if type(value) in _JSON_NATIVE:
        return value
    try:
        return values.json_value(value)
    except ValueError as exc:
        raise RowRejected(str(exc), column=column) from None


def json_object_cell(value: Any, column: str) -> dict[str, Any] | None:
    """A column that holds an object: a dict (JSON Lines, a JSON column) or its JSON text (CSV, SQL)."""
    if value is None or value == "":
        return None
    if isinstance(value, str):
        try:
            value = values.loads_exact(value)
        except ValueError:
            raise RowRejected("not a JSON object", column=column) from None
    if not isinstance(value, Mapping):
        raise RowRejected(f"expected an object, got {type(value).__name__}", column=column)
    return {str(k): json_value(v, column) for k, v in value.items()}


def text_list_cell(value: Any, column: str) -> list[str]:
    """A list of strings from a list, a JSON array text, or comma-separated text."""
    if value is None or value == "":
        return []
    if isinstance(value, str):
        text = value.strip()
        if text.startswith("["):
            try:
                value = values.loads_exact(text)
            except ValueError:
                raise RowRejected("not a JSON array", column=column) from None
        else:
            return [part.strip() for part in text.split(",") if part.strip()]
    if not isinstance(value, (list, tuple)):
        raise RowRejected(f"expected a list, got {type(value).__name__}", column=column)
    try:
        texts = [values.text_of(item) for item in value if item is not None]
    except ValueError as exc:
        raise RowRejected(str(exc), column=column) from None
    return [text for text in texts if text]
