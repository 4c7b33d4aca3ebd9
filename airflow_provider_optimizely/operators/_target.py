"""What a data operator writes to, declared once per operator: its asset, its extra link, its lineage.

A data operator names its ``target_kind`` (the API's scheme, ``assets``), its ``target_link`` (``links``)
and three methods: ``target_argument`` (the argument naming the target, as given), ``target_name`` (the
target once templates are rendered) and ``written_fields`` (which source column goes to which field).
``SyncTargetMixin`` does the rest:

- the outlet Asset: when the target and the connection are plain arguments, it is declared as the task is
  built (``declare_target``), so the DAG's parse registers it; at run time the outlet becomes
  ``Asset.ref(uri=...)`` of the resolved target (a templated one included), which Airflow resolves by URI
  to the asset that a DAG declares (the producer's, or the consumer scheduled on it). No asset is created
  at run time, so mapped tasks writing one target concurrently never race to create it (an
  ``AssetAlias`` does: it inserts the asset when its first event comes);
- the extra link, persisted when the run starts (so a failed run links too);
- ``get_openlineage_facets_on_start`` / ``_on_complete`` (``operators._lineage``).
"""

from __future__ import annotations

import logging
from collections.abc import Mapping, Sequence
from typing import TYPE_CHECKING, Any, ClassVar
from urllib.parse import urlsplit

from airflow.sdk import Asset

from airflow_provider_optimizely.assets import TargetKind, target_uri
from airflow_provider_optimizely.core.mapping import normalise_mapping
from airflow_provider_optimizely.operators._lineage import Written, operator_lineage

if TYPE_CHECKING:
    from airflow.sdk import Context

    from airflow_provider_optimizely.hooks.base import OptimizelyBaseHook
    from airflow_provider_optimizely.links import VendorUiLink

log = logging.getLogger(__name__)


def is_plain(value: Any) -> bool:
    """A value known when the DAG is parsed: text without a template, or a number (not an XComArg)."""
    if isinstance(value, bool):
        return False
    if isinstance(value, int):
        return True
    return isinstance(value, str) and bool(value) and "{{" not in value


def mapped_fields(
    columns: Sequence[str] | None,
    identifier_column: str,
    key_field: str,
    column_mapping: Mapping[str, str] | Sequence[str] | None,
) -> list[tuple[str | None, str]]:
    """``(source column, field)`` pairs of a keyed write: the key, then the mapping (``core.mapping``'s
    rule: without a mapping, every other column of the source under its own name)."""
    mapping = normalise_mapping(column_mapping, "column_mapping")
    if mapping is None:
        mapping = {column: column for column in columns or () if column != identifier_column}
    return [
        (identifier_column, key_field),
        *((source, field) for source, field in mapping.items() if source != identifier_column),
    ]


class SyncTargetMixin:
    """Asset, extra link and OpenLineage of an operator that writes to one target (see the module)."""

    target_kind: ClassVar[TargetKind]
    target_link: ClassVar[type[VendorUiLink]]
    # Provided by the operator (``OptimizelyBaseOperator`` and the source arguments).
    conn_id: str
    outlets: list[Any]
    sql: Any
    sql_conn_id: Any
    path: Any
    path_conn_id: Any
    _resolved_target: str | None = None

    # -- what each operator declares --------------------------------------------------------------------

    def target_argument(self) -> Any:
        """The argument naming the target as given (None: the connection decides it at run time)."""
        raise NotImplementedError

    def target_name(self) -> str:
        """The target's name at run time (templates rendered; may read the connection)."""
        raise NotImplementedError

    def written_fields(self, columns: Sequence[str] | None) -> list[tuple[str | None, str]]:
        """``(source column or None, field written)`` for a source of ``columns`` (None: unknown)."""
        raise NotImplementedError

    def written(self) -> Written | None:
        """What the last run wrote (None before a run); the base of the data operators keeps it."""
        return None

    # -- assets and links ---------------------------------------------------------------------------------

    def declare_target(self) -> None:
        """Add the target's Asset to the outlets when it is known now (call at the end of ``__init__``)."""
        name = self.target_argument()
        if not (is_plain(name) and is_plain(self.conn_id)):
            return
        try:
            uri = target_uri(self.target_kind, self.conn_id, name)
        except ValueError:
            return  # a bad target fails the run, which says why; the parse does not
        if not any(isinstance(o, Asset) and o.uri == uri for o in self.outlets):
            self.outlets = [*self.outlets, Asset(uri=uri)]

    def announce_target(self, context: Context, *, changes_target: bool = True) -> str:
        """Resolve the target as the run starts: the outlet that records this run's asset event (none for a
        run that changes nothing, a dry run) and the link to the target's page."""
        name = self.target_name()
        self._resolved_target = name
        uri = target_uri(self.target_kind, self.conn_id, name)
        # The Asset declared when the task was built is matched by (name, URI); its reference, by URI only,
        # also matches the asset of a consumer that spelt the URI otherwise (Airflow normalises only URIs).
        outlets = [o for o in self.outlets if not (isinstance(o, Asset) and o.uri == uri)]
        self.outlets = [*outlets, Asset.ref(uri=uri)] if changes_target else outlets
        self._persist_link(context, name)
        return name

    def _persist_link(self, context: Context, name: str) -> None:
        # A link is a convenience: like Airflow's own providers, a link that can't be made fails nothing
        # (a connection that can't be read fails the run where it is used, saying why).
        try:
            hook = self.api_hook
            url = self.target_link.url(name, hook.extras, hook.base_url)
            self.target_link.persist(context, self, url)  # type: ignore[arg-type]  # self is a BaseOperator
        except Exception as exc:
            log.warning("no %r link: %s", self.target_link.name, exc)

    @property
    def api_hook(self) -> OptimizelyBaseHook:
        return self.hook  # type: ignore[attr-defined]  # OptimizelyBaseOperator's

    # -- OpenLineage ----------------------------------------------------------------------------------------

    def lineage_namespace(self) -> str:
        """``<scheme>://<API host>``: the API's host, as OpenLineage names datasets by where they live."""
        return f"{self.target_kind.scheme}://{urlsplit(self.api_hook.base_url).netloc}"

    def get_openlineage_facets_on_start(self) -> Any:
        """Inputs and the target, without reading the source's table schemas (cheap)."""
        return self._lineage(Written(self.written_fields(None)), use_connection=False)

    def get_openlineage_facets_on_complete(self, task_instance: Any) -> Any:
        """Inputs with their schemas, the target with the fields written, column lineage and statistics."""
        return self._lineage(self.written(), use_connection=True)

    def _lineage(self, written: Written | None, *, use_connection: bool) -> Any:
        return operator_lineage(
            namespace=self.lineage_namespace(),
            name=self._resolved_target or self.target_name(),
            sql=self.sql,
            sql_conn_id=self.sql_conn_id,
            path=self.path,
            path_conn_id=self.path_conn_id,
            written=written,
            use_connection=use_connection,
        )
