"""One hook per API over the shared REST core (OptimizelyBaseHook)."""

from __future__ import annotations
