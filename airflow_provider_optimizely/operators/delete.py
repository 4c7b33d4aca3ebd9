"""OptimizelyDeleteProfilesOperator: delete Profile Store profiles by id (API.md §6).

``404`` counts as already deleted, so a rerun succeeds; ``429`` (too many events deleted before the daily
clean-up) waits for ``Retry-After`` and goes on, for at most ``rate_limit_patience`` seconds in all.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import TYPE_CHECKING, Any

from airflow_provider_optimizely.core.sync import SyncConfigError, Writer
from airflow_provider_optimizely.core.writers.profile_store import (
    DEFAULT_RATE_LIMIT_PATIENCE,
    ProfileStoreDeleteWriter,
)
from airflow_provider_optimizely.hooks.profile_store import OptimizelyProfileStoreHook
from airflow_provider_optimizely.operators._data import SOURCE_TEMPLATE_FIELDS, DataOperator
from airflow_provider_optimizely.operators._dispatch import DELETE_PROFILES

if TYPE_CHECKING:
    from airflow_provider_optimizely.hooks.base import OptimizelyBaseHook


class OptimizelyDeleteProfilesOperator(DataOperator):
    """Delete profiles (and their events) by id; return a run report whose ``details`` count ``deleted``
    and ``already_deleted``.

    :param conn_id: an ``optimizely_profile_store`` connection.
    :param profile_ids: the ids to delete (a list); or use ``sql``/``path`` as a source of ids.
    :param id_column: the source column with the ids (a one-column query needs none).
    :param scope: the profiles' scope (default: the connection's ``default_scope``, else ``default``).
    :param rate_limit_patience: seconds, in all, a delete may wait out ``429`` answers before failing.
    """

    capability = DELETE_PROFILES
    single_column = "id"
    template_fields: Sequence[str] = (
        "conn_id",
        *SOURCE_TEMPLATE_FIELDS,
        "id_column",
        "scope",
        "max_rejected",
    )
    ui_color = "#ffd6d6"

    def __init__(
        self,
        *,
        conn_id: str = "optimizely_profile_store_default",
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
        super().__init__(conn_id=conn_id, **kwargs)
        self.id_column = id_column
        self.scope = scope
        self.rate_limit_patience = float(rate_limit_patience)

    @property
    def profile_ids(self) -> Any:
        return self.rows

    def build_writer(self, hook: OptimizelyBaseHook) -> Writer:
        if not isinstance(hook, OptimizelyProfileStoreHook):
            raise SyncConfigError(f"connection {self.conn_id!r}: profiles are deleted on Profile Store only")
        return ProfileStoreDeleteWriter(
            hook,
            id_column=self.id_column,
            scope=self.scope or hook.extras.get("default_scope") or None,
            rate_limit_patience=self.rate_limit_patience,
            logger=self.log,
        )
