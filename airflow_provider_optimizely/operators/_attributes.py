"""The base of the operators that register a table's attributes (DCP) or an object type's fields (ODP).

What to register is either listed (``attributes``) or inferred from a warehouse table's column types
(``source_table`` on ``sql_conn_id``, read through SQLAlchemy's inspector); ``core.target_setup`` creates
only what is missing and refuses a datatype change before creating anything.
"""

from __future__ import annotations

from abc import abstractmethod
from collections.abc import Mapping, Sequence
from typing import TYPE_CHECKING, Any

from airflow.sdk.exceptions import AirflowFailException

from airflow_provider_optimizely.core.page import SourceError
from airflow_provider_optimizely.core.report import request_counts
from airflow_provider_optimizely.core.schema_inference import (
    AttributeSpec,
    Target,
    infer_attributes,
    parse_attributes,
)
from airflow_provider_optimizely.core.target_setup import (
    AttributeRegistry,
    TargetSetupError,
    register_missing,
)
from airflow_provider_optimizely.operators._base import HookT, OptimizelyBaseOperator
from airflow_provider_optimizely.operators._sources import warehouse_columns

if TYPE_CHECKING:
    from airflow.sdk import Context


class RegisterAttributesOperator(OptimizelyBaseOperator[HookT]):
    """Register what the target lacks; return ``{created, existing, requests}`` and the target.

    :param attributes: the attributes to register, listed (their shape is the API's: see the subclass).
    :param sql_conn_id: a warehouse connection (any Airflow SQL connection), to infer them from...
    :param source_table: ...this table's column types (``schema.table``).
    :param include: only these columns of ``source_table``.
    :param exclude: never these columns.
    :param overrides: ``{column: datatype or {datatype, format}}`` for columns whose type must be said.
    :param identifier_column: the profile key column, never registered.
    """

    template_fields: Sequence[str] = (
        "conn_id",
        "attributes",
        "sql_conn_id",
        "source_table",
        "include",
        "exclude",
        "overrides",
        "identifier_column",
    )
    template_fields_renderers = {"attributes": "json", "overrides": "json"}
    ui_color = "#d6e9ff"
    target_kind: Target

    def __init__(
        self,
        *,
        attributes: Sequence[Mapping[str, Any]] | None = None,
        sql_conn_id: str | None = None,
        source_table: str | None = None,
        include: Sequence[str] | None = None,
        exclude: Sequence[str] = (),
        overrides: Mapping[str, str | Mapping[str, Any]] | None = None,
        identifier_column: str | None = None,
        **kwargs: Any,
    ) -> None:
        super().__init__(**kwargs)
        if (attributes is None) == (source_table is None):
            raise ValueError("give either attributes or source_table (with sql_conn_id), not both or neither")
        if source_table is not None and not sql_conn_id:
            raise ValueError("source_table needs sql_conn_id, the warehouse connection to read its columns")
        self.attributes = attributes
        self.sql_conn_id = sql_conn_id
        self.source_table = source_table
        self.include = include
        self.exclude = exclude
        self.overrides = overrides
        self.identifier_column = identifier_column

    @abstractmethod
    def registry(self, hook: HookT) -> AttributeRegistry:
        """The target's attributes in its API."""

    @abstractmethod
    def target_id(self) -> int | str:
        """The target as the XCom names it."""

    def execute(self, context: Context) -> dict[str, Any]:
        try:
            registry = self.registry(self.hook)
            registration = register_missing(registry, self._wanted(), self.log)
        except (TargetSetupError, SourceError) as exc:
            raise AirflowFailException(str(exc)) from None
        return {
            "target": self.target_id(),
            "created": [s.as_dict() for s in registration.created],
            "existing": [s.as_dict() for s in registration.existing],
            "requests": request_counts(self.hook.client.stats.as_dict()),
        }

    def _wanted(self) -> list[AttributeSpec]:
        try:
            if self.attributes is not None:
                return parse_attributes(self.attributes, self.target_kind)
            return infer_attributes(
                warehouse_columns(str(self.sql_conn_id), str(self.source_table)),
                self.target_kind,
                include=self.include,
                exclude=self.exclude or (),
                overrides=self.overrides,
                identifier_column=self.identifier_column,
            )
        except ValueError as exc:
            raise TargetSetupError(str(exc)) from None
