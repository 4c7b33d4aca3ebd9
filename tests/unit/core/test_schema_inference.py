from __future__ import annotations

import pytest

from airflow_provider_optimizely.core.schema_inference import (
    AttributeSpec,
    Column,
    UnsupportedColumnTypeError,
    attribute_for_column,
    column_kind,
    infer_attributes,
    parse_attribute,
    parse_attributes,
)


@pytest.mark.parametrize(
    ("type_name", "kind"),
    [
        ("INTEGER", "integer"),
        ("BIGINT", "integer"),
        ("int8", "integer"),
        ("UNSIGNED BIG INT", "integer"),  # SQLite affinity
        ("NUMERIC(10, 2)", "decimal"),
        ("DOUBLE PRECISION", "decimal"),
        ("REAL", "decimal"),
        ("FLOAT8", "decimal"),
        ("BOOLEAN", "boolean"),
        ("bool", "boolean"),
        ("DATE", "date"),
        ("TIMESTAMP WITHOUT TIME ZONE", "timestamp"),
        ("timestamp(6) with time zone", "timestamp"),
        ("TIMESTAMPTZ", "timestamp"),
        ("DATETIME", "timestamp"),
        ("TEXT", "text"),
        ("VARCHAR(40)", "text"),
        ("character varying(255)", "text"),
        ("VARYING CHARACTER(10)", "text"),  # SQLite affinity
        ("UUID", "text"),
        ("JSONB", None),
        ("BYTEA", None),
        ("BLOB", None),
        ("INTERVAL", None),
        ("POINT", None),
        ("TIME", None),
        ("time with time zone", None),
        ("INTEGER[]", None),
        ("", None),
        ("NULL", None),
    ],
)
def test_column_kind(type_name, kind):
    assert column_kind(type_name) == kind


def test_each_kind_maps_to_the_documented_dcp_and_odp_types():
    columns = [
        Column("visits", "BIGINT"),
        Column("spend", "NUMERIC(12,2)"),
        Column("vip", "BOOLEAN"),
        Column("birthday", "DATE"),
        Column("last_seen", "TIMESTAMP"),
        Column("city", "VARCHAR(40)"),
    ]
    dcp = [attribute_for_column(c, "dcp") for c in columns]
    assert [(a.datatype, a.format) for a in dcp if a] == [
        ("long", None),
        ("double", None),
        ("bool", None),
        ("datetime", "yyyy-mm-dd"),
        ("datetime", "yyyy-mm-ddThh:mm:ssZ"),
        ("string", None),
    ]
    odp = [attribute_for_column(c, "odp") for c in columns]
    assert [(a.datatype, a.format) for a in odp if a] == [
        ("number", None),
        ("number", None),
        ("boolean", None),
        ("timestamp", None),
        ("timestamp", None),
        ("string", None),
    ]


COLUMNS = [
    Column("customer_id", "TEXT"),
    Column("visits", "INTEGER"),
    Column("profile", "JSONB"),
    Column("joined", "DATE"),
    Column("score", "REAL"),
]


def test_infer_drops_the_identifier_and_excluded_columns_and_keeps_column_order():
    specs = infer_attributes(COLUMNS, "dcp", exclude=["profile"], identifier_column="customer_id")
    assert [s.name for s in specs] == ["visits", "joined", "score"]
    assert specs[1] == AttributeSpec("joined", "datetime", "yyyy-mm-dd")


def test_infer_include_keeps_only_those_columns():
    specs = infer_attributes(COLUMNS, "odp", include=["score", "visits"], identifier_column="customer_id")
    assert [(s.name, s.datatype) for s in specs] == [("visits", "number"), ("score", "number")]


def test_an_unmappable_column_is_an_error_naming_it_unless_overridden():
    with pytest.raises(UnsupportedColumnTypeError, match=r"profile \(JSONB\)"):
        infer_attributes(COLUMNS, "dcp", identifier_column="customer_id")
    specs = infer_attributes(
        COLUMNS,
        "dcp",
        identifier_column="customer_id",
        overrides={"profile": "string", "visits": {"datatype": "datetime", "format": "epoch"}},
    )
    by_name = {s.name: s for s in specs}
    assert by_name["profile"] == AttributeSpec("profile", "string")
    assert by_name["visits"] == AttributeSpec("visits", "datetime", "epoch")


def test_odp_override_accepts_type_key():
    specs = infer_attributes(COLUMNS, "odp", include=["profile"], overrides={"profile": {"type": "string"}})
    assert specs == [AttributeSpec("profile", "string")]


@pytest.mark.parametrize(
    ("kwargs", "message"),
    [
        ({"exclude": ["nope"]}, "exclude names column"),
        ({"include": ["nope"]}, "include names column"),
        ({"overrides": {"nope": "string"}}, "overrides names column"),
        ({"identifier_column": "nope"}, "identifier column 'nope'"),
    ],
)
def test_names_that_are_not_columns_are_errors(kwargs, message):
    with pytest.raises(ValueError, match=message):
        infer_attributes(COLUMNS, "dcp", **{"exclude": ["profile"], **kwargs})


@pytest.mark.parametrize(
    ("spec", "target", "message"),
    [
        ("varchar", "dcp", "DCP datatype must be one of"),
        ("datetime", "dcp", "needs a format"),
        ({"datatype": "datetime", "format": "dd/mm/yyyy"}, "dcp", "needs a format"),
        ({"datatype": "long", "format": "epoch"}, "dcp", "only a datetime takes a format"),
        ("long", "odp", "ODP field type must be one of"),
        ({"type": "timestamp", "format": "epoch"}, "odp", "take no format"),
        ({"datatype": "string", "fromat": "x"}, "dcp", "unknown key"),
        ({"datatype": "string", "display_name": "X"}, "dcp", "display_name is an ODP"),
    ],
)
def test_parse_attribute_refuses_what_the_api_would(spec, target, message):
    with pytest.raises(ValueError, match=message):
        parse_attribute("a", spec, target)


def test_parse_attributes_reads_a_dag_authors_list():
    specs = parse_attributes(
        [
            {"name": "plan", "datatype": "string", "description": "billing plan"},
            {"name": "since", "datatype": "datetime", "format": "yyyy-mm-dd"},
        ],
        "dcp",
    )
    assert specs == [
        AttributeSpec("plan", "string", None, "billing plan"),
        AttributeSpec("since", "datetime", "yyyy-mm-dd"),
    ]
    assert specs[1].as_dict() == {"name": "since", "datatype": "datetime", "format": "yyyy-mm-dd"}
    odp = parse_attributes([{"name": "tier", "type": "string", "display_name": "Tier"}], "odp")
    assert odp == [AttributeSpec("tier", "string", display_name="Tier")]


def test_parse_attributes_refuses_duplicates_and_nameless_items():
    with pytest.raises(ValueError, match="listed twice"):
        parse_attributes([{"name": "a", "datatype": "long"}, {"name": "a", "datatype": "long"}], "dcp")
    with pytest.raises(ValueError, match="with a 'name'"):
        parse_attributes([{"datatype": "long"}], "dcp")


def test_same_type_compares_datatype_and_format():
    assert AttributeSpec("a", "datetime", "epoch").same_type_as(AttributeSpec("a", "datetime", "epoch"))
    assert not AttributeSpec("a", "datetime", "epoch").same_type_as(
        AttributeSpec("a", "datetime", "yyyy-mm-dd")
    )
    assert not AttributeSpec("a", "long").same_type_as(AttributeSpec("a", "double"))


def test_unknown_target_is_refused():
    with pytest.raises(ValueError, match="target must be one of"):
        infer_attributes(COLUMNS, "optimove")  # type: ignore[arg-type]
