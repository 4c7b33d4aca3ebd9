"""Warehouse column types to DCP attribute datatypes and ODP field types (docs/api-contract.md §4.2, §5).

Airflow-free: it takes column names and type names as a database reports them (SQLAlchemy's inspector,
``information_schema``, SQLite's declared types) and decides what each column becomes in the API. A type
with no sensible counterpart (binary, JSON, arrays, intervals) is an error naming the column, unless the
caller excludes the column or gives an explicit override: guessing would register an attribute whose
datatype can never change afterwards.
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from typing import Any, Literal

from airflow_provider_optimizely.core.dcp_datatypes import check_datatype
from airflow_provider_optimizely.core.validation import ODP_FIELD_TYPES

Target = Literal["dcp", "odp"]
TARGETS: tuple[Target, ...] = ("dcp", "odp")

# The kinds a column type falls into, and what each kind is called in each API.
Kind = Literal["integer", "decimal", "boolean", "date", "timestamp", "text"]
_DCP_BY_KIND: dict[str, tuple[str, str | None]] = {
    "integer": ("long", None),
    "decimal": ("double", None),
    "boolean": ("bool", None),
    "date": ("datetime", "yyyy-mm-dd"),
    "timestamp": ("datetime", "yyyy-mm-ddThh:mm:ssZ"),
    "text": ("string", None),
}
_ODP_BY_KIND: dict[str, str] = {
    "integer": "number",
    "decimal": "number",
    "boolean": "boolean",
    "date": "timestamp",
    "timestamp": "timestamp",
    "text": "string",
}

# Exact type names first (after lower-casing and dropping "(n, m)"), across PostgreSQL, SQLite, MySQL,
# SQL Server, Snowflake, BigQuery and Redshift spellings.
_TYPE_NAMES: dict[Kind, str] = {
    "integer": "int integer bigint smallint tinyint mediumint int2 int4 int8 int64 serial bigserial "
    "smallserial serial4 serial8 long byteint",
    "decimal": "real float float4 float8 float64 double numeric decimal number money smallmoney "
    "bignumeric dec",
    "boolean": "bool boolean",
    "date": "date",
    "timestamp": "timestamp timestamptz datetime datetime2 smalldatetime datetimeoffset timestamp_ntz "
    "timestamp_ltz timestamp_tz",
    "text": "text varchar char character nvarchar nchar string clob nclob uuid citext name enum tinytext "
    "mediumtext longtext ntext bpchar varchar2 nvarchar2 uniqueidentifier",
}
_EXACT: dict[str, Kind] = {
    **{name: kind for kind, names in _TYPE_NAMES.items() for name in names.split()},
    "double precision": "decimal",
    "character varying": "text",
    "timestamp with time zone": "timestamp",
    "timestamp without time zone": "timestamp",
}

# Then SQLite's affinity rules (https://sqlite.org/datatype3.html §3.1), so that any declared name a
# SQLite table may carry ("UNSIGNED BIG INT", "VARYING CHARACTER") still lands somewhere sensible.
_NOT_AFFINITY = re.compile(r"interval|point|time(?!stamp)|json|blob|binary|bytea|array|\[\]")
_AFFINITY: tuple[tuple[re.Pattern[str], Kind], ...] = (
    (re.compile(r"int"), "integer"),
    (re.compile(r"char|clob|text"), "text"),
    (re.compile(r"real|floa|doub"), "decimal"),
)
_SPEC_KEYS = frozenset({"datatype", "format", "description", "display_name"})
_PARAMETERS = re.compile(r"\([^)]*\)")


class UnsupportedColumnTypeError(ValueError):
    """Some columns have types with no attribute counterpart; the message names each one."""


@dataclass(frozen=True)
class Column:
    """A warehouse column: its name and its type as the database spells it."""

    name: str
    type_name: str


@dataclass(frozen=True)
class AttributeSpec:
    """An attribute to register: a DCP ``datatype`` (and ``format`` for datetime) or an ODP field ``type``."""

    name: str
    datatype: str
    format: str | None = None
    description: str | None = None
    display_name: str | None = None

    def as_dict(self) -> dict[str, Any]:
        spec: dict[str, Any] = {"name": self.name, "datatype": self.datatype}
        if self.format is not None:
            spec["format"] = self.format
        return spec

    def same_type_as(self, other: AttributeSpec) -> bool:
        return self.datatype == other.datatype and (self.format or None) == (other.format or None)

    def describe_type(self) -> str:
        return f"{self.datatype} ({self.format})" if self.format else self.datatype


def column_kind(type_name: str) -> Kind | None:
    """The kind of a column type name, or None when none fits (binary, JSON, arrays, times of day)."""
    normalized = " ".join(_PARAMETERS.sub("", type_name).lower().split())
    if normalized in _EXACT:
        return _EXACT[normalized]
    # "timestamp(6) with time zone" loses its "(6)" above; "unsigned int" and the like go by affinity.
    if normalized.startswith("timestamp") or normalized.startswith("datetime"):
        return "timestamp"
    if _NOT_AFFINITY.search(normalized):
        return None
    for pattern, kind in _AFFINITY:
        if pattern.search(normalized):
            return kind
    return None


def attribute_for_column(column: Column, target: Target) -> AttributeSpec | None:
    """The attribute a column becomes in ``target``, or None when its type has no counterpart."""
    kind = column_kind(column.type_name)
    if kind is None:
        return None
    if target == "dcp":
        datatype, fmt = _DCP_BY_KIND[kind]
        return AttributeSpec(column.name, datatype, fmt)
    return AttributeSpec(column.name, _ODP_BY_KIND[kind])


def infer_attributes(
    columns: Iterable[Column],
    target: Target,
    *,
    include: Iterable[str] | None = None,
    exclude: Iterable[str] = (),
    overrides: Mapping[str, str | Mapping[str, Any]] | None = None,
    identifier_column: str | None = None,
) -> list[AttributeSpec]:
    """The attributes to register for a warehouse table's columns, in column order.

    ``include`` (when given) keeps only those columns, ``exclude`` drops some; the identifier column is
    the profile's key, never an attribute. ``overrides`` names a column's datatype outright: a string
    (``"long"``, ``"number"``) or a mapping (``{"datatype": "datetime", "format": "epoch"}``; ODP also
    takes ``{"type": ...}``). Every column whose type can't be mapped is reported in one error.
    """
    _check_target(target)
    columns = list(columns)
    names = [column.name for column in columns]
    overrides = dict(overrides or {})
    wanted = set(include) if include is not None else None
    dropped = set(exclude) | ({identifier_column} if identifier_column else set())
    _check_known(names, wanted or set(), "include")
    _check_known(names, set(exclude), "exclude")
    _check_known(names, set(overrides), "overrides")
    if identifier_column and identifier_column not in names:
        raise ValueError(f"identifier column {identifier_column!r} is not a column of the table ({names})")

    specs: list[AttributeSpec] = []
    unsupported: list[Column] = []
    for column in columns:
        if column.name in dropped or (wanted is not None and column.name not in wanted):
            continue
        if column.name in overrides:
            specs.append(parse_attribute(column.name, overrides[column.name], target))
            continue
        spec = attribute_for_column(column, target)
        if spec is None:
            unsupported.append(column)
        else:
            specs.append(spec)
    if unsupported:
        listed = ", ".join(f"{c.name} ({c.type_name})" for c in unsupported)
        raise UnsupportedColumnTypeError(
            f"no {target.upper()} datatype fits column(s) {listed}: exclude them, or name their datatype "
            "in overrides"
        )
    return specs


def parse_attribute(name: str, spec: str | Mapping[str, Any], target: Target) -> AttributeSpec:
    """An explicit attribute (from a DAG author): checked against the API's datatypes before any call."""
    _check_target(target)
    if isinstance(spec, str):
        fields: dict[str, Any] = {"datatype": spec}
    else:
        fields = dict(spec)
        if "type" in fields and "datatype" not in fields:
            fields["datatype"] = fields.pop("type")
    unknown = sorted(set(fields) - _SPEC_KEYS)
    if unknown:
        raise ValueError(f"attribute {name!r}: unknown key(s) {unknown}; known: {sorted(_SPEC_KEYS)}")
    datatype = fields.get("datatype")
    fmt = fields.get("format") or None
    description = fields.get("description") or None
    display_name = fields.get("display_name") or None
    if not name or not isinstance(name, str):
        raise ValueError(f"an attribute needs a non-empty name, got {name!r}")
    if target == "dcp":
        try:
            check_datatype(datatype, fmt)
        except ValueError as exc:
            raise ValueError(f"attribute {name!r}: {exc}") from None
    else:
        if datatype not in ODP_FIELD_TYPES:
            raise ValueError(
                f"attribute {name!r}: ODP field type must be one of {ODP_FIELD_TYPES}, got {datatype!r}"
            )
        if fmt is not None:
            raise ValueError(f"attribute {name!r}: ODP fields take no format")
    if display_name is not None and target == "dcp":
        raise ValueError(f"attribute {name!r}: display_name is an ODP field's; DCP attributes have none")
    return AttributeSpec(name, str(datatype), fmt, description, display_name)


def parse_attributes(attributes: Iterable[Mapping[str, Any]], target: Target) -> list[AttributeSpec]:
    """A DAG author's list of ``{name, datatype|type, format?, description?}``; duplicates are an error."""
    specs = []
    seen: set[str] = set()
    for item in attributes:
        if not isinstance(item, Mapping) or "name" not in item:
            raise ValueError(f"each attribute must be a mapping with a 'name', got {item!r}")
        name = item["name"]
        if name in seen:
            raise ValueError(f"attribute {name!r} is listed twice")
        seen.add(name)
        specs.append(parse_attribute(name, {k: v for k, v in item.items() if k != "name"}, target))
    return specs


def _check_target(target: str) -> None:
    if target not in TARGETS:
        raise ValueError(f"target must be one of {TARGETS}, got {target!r}")


def _check_known(names: list[str], asked: set[str], what: str) -> None:
    unknown = sorted(asked - set(names))
    if unknown:
        raise ValueError(f"{what} names column(s) the table does not have: {unknown} (columns: {names})")
