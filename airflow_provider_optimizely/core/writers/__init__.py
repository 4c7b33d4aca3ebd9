"""One writer per API and capability: turn a row into an API item, send a batch, say what the API took.

Writers follow ``core.sync.Writer``. They reach the API through a hook object given to them (duck-typed:
any object with the hook's methods), so this package stays free of Airflow and is tested with fakes.
"""

from __future__ import annotations
