"""OpenLineage of the data operators: the source read, the vendor target written, and how columns map.

Every data operator reports the same shape (``docs/lineage.md``):

- inputs: a SQL source's tables, found by the OpenLineage provider's ``SQLParser`` with the SQL hook's
  own lineage support (its database info, dialect and default schema), as common-sql's operators do; a
  file's path in its object-storage namespace (``s3://bucket`` + key; ``file`` + an absolute path); a
  ``rows`` list has no input dataset;
- one output: the target, in a namespace per API (``<scheme>://<API host>``, the schemes of
  ``assets``), with a schema facet of the fields written, a column-lineage facet from the mapping (through
  the query's own column lineage for SQL) and, once the run is over, output statistics (rows succeeded,
  bytes of the bodies the API accepted).

The operator declares only its target (``operators._target``); this module builds the facets. The
OpenLineage packages are imported here, lazily: without the ``[openlineage]`` extra nothing is emitted
and nothing fails.
"""

from __future__ import annotations

import logging
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class Written:
    """What a run wrote: ``(source column or None, field written)`` pairs, rows and bytes."""

    fields: Sequence[tuple[str | None, str]]
    rows: int | None = None
    bytes: int | None = None


@dataclass(frozen=True)
class Origin:
    """Where a source column comes from: a column of an input dataset."""

    namespace: str
    name: str
    field: str
    #: True when the value is the source's as it is (a file's column): an IDENTITY transformation.
    identity: bool


def operator_lineage(
    *,
    namespace: str,
    name: str,
    sql: str | None,
    sql_conn_id: str | None,
    path: Any,
    path_conn_id: str | None,
    written: Written | None,
    use_connection: bool,
) -> Any:
    """The ``OperatorLineage`` of a run (None without the OpenLineage provider)."""
    try:
        from airflow.providers.openlineage.extractors import OperatorLineage
    except ImportError:
        return None
    inputs: list[Any] = []
    job_facets: dict[str, Any] = {}
    origins: dict[str, list[Origin]] = {}
    if sql:
        inputs, job_facets, origins = _sql_inputs(str(sql), sql_conn_id, use_connection)
    elif path is not None:
        inputs = [_path_dataset(path, path_conn_id)]
    if len(inputs) == 1 and not origins:  # a file, or SELECT *: each column is its own
        only = inputs[0]
        origins = _same_names(only.namespace, only.name, written)
    output = _output(namespace, name, written, origins)
    return OperatorLineage(inputs=inputs, outputs=[output], job_facets=job_facets)


def _sql_inputs(
    sql: str, sql_conn_id: str | None, use_connection: bool
) -> tuple[list[Any], dict[str, Any], dict[str, list[Origin]]]:
    """The query's input tables (through the SQL hook), its SQL job facet and its column lineage."""
    from airflow.providers.openlineage.sqlparser import SQLParser

    from airflow_provider_optimizely.operators._sources import sql_hook

    if not sql_conn_id:
        return [], {}, {}
    hook = sql_hook(sql_conn_id)
    connection = hook.get_connection(sql_conn_id)
    database_info = hook.get_openlineage_database_info(connection)
    if database_info is None:  # a hook without lineage support
        return [], {}, {}
    parser = SQLParser(
        dialect=hook.get_openlineage_database_dialect(connection),
        default_schema=hook.get_openlineage_default_schema(),
    )
    lineage = parser.generate_openlineage_metadata_from_sql(
        sql=sql,
        hook=hook,
        database_info=database_info,
        sqlalchemy_engine=hook.get_sqlalchemy_engine() if use_connection else None,
        use_connection=use_connection,
    )
    parsed = parser.parse(parser.split_sql_string(sql))
    origins: dict[str, list[Origin]] = {}
    for column in parsed.column_lineage if parsed else []:
        # The parser says which columns a result column is made of, not how: no transformation is claimed.
        found = [
            Origin(dataset.namespace, dataset.name, source.name, identity=False)
            for source in column.lineage
            for dataset in _datasets_of(lineage.inputs, source.origin)
        ]
        if found:
            origins[column.descendant.name] = found
    return list(lineage.inputs), dict(lineage.job_facets), origins


def _datasets_of(inputs: Sequence[Any], table: Any) -> list[Any]:
    """The input dataset of a table the parser named (``schema.table`` within ``db.schema.table``)."""
    if table is None:
        return []
    wanted = [part.lower() for part in str(table.qualified_name).split(".")]
    return [
        dataset
        for dataset in inputs
        if [part.lower() for part in dataset.name.split(".")][-len(wanted) :] == wanted
    ]


def _path_dataset(path: Any, conn_id: str | None) -> Any:
    """A file as OpenLineage names it: its object-storage namespace and key, or ``file`` and its path."""
    from airflow.providers.common.compat.openlineage.facet import Dataset
    from airflow.sdk import ObjectStoragePath

    text = str(path)
    if "://" not in text:
        return Dataset(namespace="file", name=str(Path(text).resolve()))
    storage_path = path if isinstance(path, ObjectStoragePath) else ObjectStoragePath(text, conn_id=conn_id)
    if storage_path.protocol in ("file", "local"):
        return Dataset(namespace="file", name="/" + storage_path.key.lstrip("/"))
    return Dataset(namespace=storage_path.namespace, name=storage_path.key)


def _same_names(namespace: str, name: str, written: Written | None) -> dict[str, list[Origin]]:
    if written is None:
        return {}
    return {
        source: [Origin(namespace, name, source, True)] for source, _ in written.fields if source is not None
    }


def _output(namespace: str, name: str, written: Written | None, origins: dict[str, list[Origin]]) -> Any:
    from airflow.providers.common.compat.openlineage.facet import (
        ColumnLineageDatasetFacet,
        Fields,
        InputField,
        OutputDataset,
        OutputStatisticsOutputDatasetFacet,
        SchemaDatasetFacet,
        SchemaDatasetFacetFields,
    )
    from openlineage.client.generated.column_lineage_dataset import Transformation

    facets: dict[str, Any] = {}
    output_facets: dict[str, Any] = {}
    if written is not None and written.fields:
        facets["schema"] = SchemaDatasetFacet(
            fields=[SchemaDatasetFacetFields(name=field) for _, field in written.fields]
        )
        lineage: dict[str, Any] = {}
        for source, field in written.fields:
            sources = origins.get(source, []) if source is not None else []
            if not sources:
                continue
            lineage[field] = Fields(
                inputFields=[
                    InputField(
                        namespace=o.namespace,
                        name=o.name,
                        field=o.field,
                        transformations=[Transformation(type="DIRECT", subtype="IDENTITY")]
                        if o.identity
                        else None,
                    )
                    for o in sources
                ]
            )
        if lineage:
            facets["columnLineage"] = ColumnLineageDatasetFacet(fields=lineage)
    if written is not None and (written.rows is not None or written.bytes is not None):
        output_facets["outputStatistics"] = OutputStatisticsOutputDatasetFacet(
            rowCount=written.rows, size=written.bytes
        )
    return OutputDataset(namespace=namespace, name=name, facets=facets, outputFacets=output_facets)
