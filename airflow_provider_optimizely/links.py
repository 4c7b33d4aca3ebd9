"""Extra links from a data task to its target in the vendor's web UI.

None of the vendors documents a URL for its UI pages (the DCP documents only name the menu, "Audiences >
Attributes"), so every pattern below is **inferred** from the products' URLs and may change under us.
Each link's base is overridable per connection with the extra ``ui_base_url`` (a UI on another region or
host); the path after it is fixed.

As Airflow's own providers do on Airflow 3, the operator persists what the link needs while it runs
(``persist``: here the whole URL, under the link's XCom ``key``); the worker then stores the link the UI
shows (``get_link`` at the end of the task), so the UI needs neither the connection nor the operator.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any, ClassVar
from urllib.parse import quote, urlsplit

from airflow.sdk import BaseOperatorLink
from airflow.sdk.execution_time.xcom import XCom

if TYPE_CHECKING:
    from airflow.sdk import BaseOperator, Context
    from airflow.sdk.types import TaskInstanceKey

#: The connection extra that replaces a link's default UI base URL.
UI_BASE_URL_EXTRA = "ui_base_url"


class VendorUiLink(BaseOperatorLink):
    """A link to one target page; a subclass names the page, its default base and its path."""

    name: ClassVar[str]  # the button's label
    key: ClassVar[str]  # the XCom key the URL is persisted under
    #: The UI's base URL when the connection has no ``ui_base_url`` (None: the connection's own host).
    default_base: ClassVar[str | None]
    #: The page's path after the base; ``{target}`` is the target's name, URL-quoted.
    path: ClassVar[str]

    def get_link(self, operator: BaseOperator, *, ti_key: TaskInstanceKey) -> str:
        url = XCom.get_value(key=self.key, ti_key=ti_key)
        return url if isinstance(url, str) else ""

    @classmethod
    def url(cls, target: str, extras: dict[str, Any], api_base_url: str) -> str:
        """The page of ``target``: from the connection's ``ui_base_url``, else the default base."""
        base = str(extras.get(UI_BASE_URL_EXTRA) or cls.default_base or _origin(api_base_url)).rstrip("/")
        return base + cls.path.format(target=quote(target, safe=""))

    @classmethod
    def persist(cls, context: Context, operator: BaseOperator, url: str) -> None:
        """Keep the URL for ``get_link`` (nothing when the task pushes no XCom, as Airflow's links do)."""
        ti = context.get("ti")
        if ti is not None and operator.do_xcom_push:
            ti.xcom_push(key=cls.key, value=url)


def _origin(url: str) -> str:
    parts = urlsplit(url)
    return f"{parts.scheme}://{parts.netloc}"


class DcpTableLink(VendorUiLink):
    """The DCP table (datasource) in Optimizely's app (inferred)."""

    name = "Optimizely DCP table"
    key = "optimizely_dcp_table_link"
    default_base = "https://app.optimizely.com"
    path = "/v2/dcp/datasources/{target}"


class OdpObjectLink(VendorUiLink):
    """The ODP object type (``customers``, ``events``) in ODP's app (inferred)."""

    name = "Optimizely ODP object"
    key = "optimizely_odp_object_link"
    default_base = "https://app.zaius.com"
    path = "/app#/objects/{target}"


class ProfileStoreScopeLink(VendorUiLink):
    """The Profile Store scope's profiles on the instance (inferred; the instance is the connection's
    host unless ``ui_base_url`` names another)."""

    name = "Optimizely Profile Store scope"
    key = "optimizely_profile_store_scope_link"
    default_base = None
    path = "/profiles?scope={target}"


class OptimoveConnectionLink(VendorUiLink):
    """The Optimove data connection in Opti-X (inferred)."""

    name = "Optimove data connection"
    key = "optimove_data_connection_link"
    default_base = "https://opti-x.optimove.net"
    path = "/data-connections/{target}"


__all__ = [
    "DcpTableLink",
    "OdpObjectLink",
    "OptimoveConnectionLink",
    "ProfileStoreScopeLink",
    "VendorUiLink",
]
