"""Operators of the Optimizely Profile Store v1.0 API (docs/api-contract.md §6).

- ``OptimizelyProfileStorePutProfilesOperator``: ``PUT api/v1.0/profiles/{id}`` a row (the profile
  replaced whole, or created); returns a run report.
- ``OptimizelyProfileStoreDeleteProfilesOperator``: ``DELETE api/v1.0/profiles/{scope}/{id}`` a row;
  returns a run report.

A PUT **replaces** the stored profile: properties the row does not carry are removed. The vendor lists
Profile Store as deprecated in favour of ODP.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any, ClassVar

from airflow_provider_optimizely.assets import PROFILE_STORE_SCOPE
from airflow_provider_optimizely.core.mirror import DEFAULT_MAX_DELETE_FRACTION, delete_unseen
from airflow_provider_optimizely.core.report import RunReport
from airflow_provider_optimizely.core.sync import SyncConfigError
from airflow_provider_optimizely.core.sync_state import IntervalRun, KeyRun
from airflow_provider_optimizely.core.writers.profile_store import (
    DEFAULT_RATE_LIMIT_PATIENCE,
    ProfileStoreDeleteWriter,
    ProfileStorePutWriter,
)
from airflow_provider_optimizely.hooks.profile_store import OptimizelyProfileStoreHook
from airflow_provider_optimizely.links import ProfileStoreScopeLink
from airflow_provider_optimizely.operators._base import as_bool
from airflow_provider_optimizely.operators._row_sync import RowSyncOperator, concurrency_of
from airflow_provider_optimizely.operators._target import mapped_fields

_UI_COLOR = "#fde2c4"


def _scope(asked: str | None, hook: OptimizelyProfileStoreHook) -> str | None:
    return asked or hook.extras.get("default_scope") or None


class _ScopeSync(RowSyncOperator[OptimizelyProfileStoreHook]):
    """A sync into Profile Store; its target is a scope (``scope``, else the connection's
    ``default_scope``)."""

    target_kind = PROFILE_STORE_SCOPE
    target_link = ProfileStoreScopeLink
    operator_extra_links = (ProfileStoreScopeLink(),)
    scope: str | None

    def target_argument(self) -> Any:
        return self.scope

    def target_name(self) -> str:
        return self.scope or self.hook.default_scope


class OptimizelyProfileStorePutProfilesOperator(_ScopeSync):
    """Replace (or create) one Profile Store profile per source row; return the run report.

    A row's columns map to the profile's properties (``Name``, ``DeviceIds``, ``Visits``, ``FirstSeen``,
    ``LastSeen``, ``ProfileManager``, ``ContactInformation``, ``Info``, ``Payload``) or into
    ``Info``/``Payload`` with a dotted name (``Info.Email``, ``Payload.tier``). The store's rules
    (``Visits`` >= 0, ``FirstSeen`` <= ``LastSeen``, a body of at most 262,144 bytes: 256 KiB) are
    checked before sending; a profile with the ``DeviceIds`` or ``Info.Email`` of another (409) is
    rejected by row.

    :param identifier_column: the source column holding each profile's id.
    :param column_mapping: ``{source column: property}`` (or a list of columns named like properties).
    :param scope: the profiles' scope (default: the connection's ``default_scope``, else ``default``).
    :param mirror: also delete the profiles whose ids the source no longer has (ids the sync state holds
        from earlier runs), once every row was sent. Never when the source is empty, and not more than
        ``max_delete_fraction`` of the ids in the state unless ``force_deletes``: a refusal fails the task
        before any delete. A ``dry_run`` counts the deletes it would make.
    :param max_delete_fraction: the largest share of known ids a mirror run may delete (default 10%).
    :param force_deletes: delete past ``max_delete_fraction`` (never past an empty source).
    :param conn_id: an ``optimizely_profile_store`` connection (default
        ``optimizely_profile_store_default``).
    Source, ``max_rejected``, ``max_concurrency``, the sync state: see ``RowSyncOperator``.
    """

    hook_class = OptimizelyProfileStoreHook
    operation = "upsert-profiles"
    template_fields: Sequence[str] = (
        *RowSyncOperator.template_fields,
        "identifier_column",
        "column_mapping",
        "scope",
        "mirror",
        "max_delete_fraction",
        "force_deletes",
    )
    template_fields_renderers: ClassVar[dict[str, str]] = {
        **RowSyncOperator.template_fields_renderers,
        "column_mapping": "json",
    }
    ui_color = _UI_COLOR

    def __init__(
        self,
        *,
        identifier_column: str,
        column_mapping: Mapping[str, str] | Sequence[str] | None = None,
        scope: str | None = None,
        mirror: bool | str = False,
        max_delete_fraction: float | str = DEFAULT_MAX_DELETE_FRACTION,
        force_deletes: bool | str = False,
        **kwargs: Any,
    ) -> None:
        super().__init__(**kwargs)
        self.identifier_column = identifier_column
        self.column_mapping = column_mapping
        self.scope = scope
        if mirror is True and kwargs.get("incremental") is False:
            raise ValueError("mirror mode deletes the ids the sync state holds: it needs incremental=True")
        self.mirror = mirror
        self.max_delete_fraction = max_delete_fraction
        self.force_deletes = force_deletes
        self.declare_target()

    def written_fields(self, columns: Sequence[str] | None) -> list[tuple[str | None, str]]:
        return mapped_fields(columns, self.identifier_column, "ProfileId", self.column_mapping)

    def build_writer(self, hook: OptimizelyProfileStoreHook) -> ProfileStorePutWriter:
        return ProfileStorePutWriter(
            hook,
            identifier_column=self.identifier_column,
            columns=self.column_mapping,
            scope=_scope(self.scope, hook),
        )

    def after_sync(
        self, hook: OptimizelyProfileStoreHook, run: KeyRun | IntervalRun | None, report: RunReport
    ) -> None:
        if not as_bool(self.mirror, "mirror"):
            return
        if not isinstance(run, KeyRun):
            raise SyncConfigError(
                "mirror mode deletes the ids the sync state holds: it needs incremental=True"
            )
        delete_unseen(
            run,
            ProfileStoreDeleteWriter(hook, scope=_scope(self.scope, hook), logger=self.log),
            report,
            max_fraction=float(self.max_delete_fraction),
            force=as_bool(self.force_deletes, "force_deletes"),
            max_concurrency=concurrency_of(self.max_concurrency),
            logger=self.log,
        )


class OptimizelyProfileStoreDeleteProfilesOperator(_ScopeSync):
    """Delete profiles (and their events) by id; return the run report, whose ``details`` count
    ``deleted`` and ``already_deleted``.

    ``404`` counts as already deleted, so a rerun succeeds; ``429`` (more than 1,000,000 events deleted
    before the store's daily clean-up) waits for ``Retry-After`` and goes on, for at most
    ``rate_limit_patience`` seconds in all.

    :param profile_ids: the ids to delete (a list); or use ``sql``/``path`` as a source of ids.
    :param id_column: the source column with the ids (a one-column source needs none).
    :param scope: the profiles' scope (default: the connection's ``default_scope``, else ``default``).
    :param rate_limit_patience: seconds, in all, a delete may wait out ``429`` answers before failing.
    :param conn_id: an ``optimizely_profile_store`` connection.
    Source, ``max_rejected``, ``max_concurrency``: see ``RowSyncOperator``.
    """

    hook_class = OptimizelyProfileStoreHook
    operation = "delete-profile"
    single_column = "id"
    keeps_state = False  # a delete is the same request every time: there is nothing to compare
    template_fields: Sequence[str] = (*RowSyncOperator.template_fields, "id_column", "scope")
    ui_color = "#ffd6d6"

    def __init__(
        self,
        *,
        profile_ids: Sequence[str] | None = None,
        id_column: str = "id",
        scope: str | None = None,
        rate_limit_patience: float = DEFAULT_RATE_LIMIT_PATIENCE,
        **kwargs: Any,
    ) -> None:
        if profile_ids is not None:
            if kwargs.get("rows") is not None:
                raise ValueError("give profile_ids or rows, not both")
            kwargs["rows"] = profile_ids
        super().__init__(**kwargs)
        self.id_column = id_column
        self.scope = scope
        self.rate_limit_patience = float(rate_limit_patience)
        self.declare_target()

    def written_fields(self, columns: Sequence[str] | None) -> list[tuple[str | None, str]]:
        """The ids deleted: the id column (the one column of a one-column source)."""
        if columns is not None and len(columns) == 1:
            return [(columns[0], "ProfileId")]
        return [(self.id_column, "ProfileId")]

    @property
    def profile_ids(self) -> Any:
        return self.rows

    def build_writer(self, hook: OptimizelyProfileStoreHook) -> ProfileStoreDeleteWriter:
        return ProfileStoreDeleteWriter(
            hook,
            id_column=self.id_column,
            scope=_scope(self.scope, hook),
            rate_limit_patience=self.rate_limit_patience,
            logger=self.log,
        )


__all__ = ["OptimizelyProfileStoreDeleteProfilesOperator", "OptimizelyProfileStorePutProfilesOperator"]
