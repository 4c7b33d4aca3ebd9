"""A mark made just before a request goes on the wire: how a sync checkpoints a batch "in flight".

The sync loop knows which batch a request carries; the REST client knows when that request's bytes go
out, past every rate-limit, shared-budget and pacing wait. ``marked_on_send(mark)`` joins the two for the
calls made inside it, in this thread: the first request there that may change something (not a read-only
method) takes the mark (``take_mark``) and makes it once, just before its first attempt is sent. Its
retries, and the requests after it (a batch resent without the items a 400 named), make none: they carry
items already marked. A batch whose request never left (its worker killed while it waited for the rate
budget) is not marked, so a resumed run counts as resent only what may have reached the API.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from contextlib import contextmanager
from contextvars import ContextVar

Mark = Callable[[], None]

_pending: ContextVar[Mark | None] = ContextVar("optimizely_send_mark", default=None)


@contextmanager
def marked_on_send(mark: Mark) -> Iterator[None]:
    """Have the first request made in this block that may change something call ``mark`` just before
    it is sent (see the module's docstring)."""
    token = _pending.set(mark)
    try:
        yield
    finally:
        _pending.reset(token)


def take_mark() -> Mark | None:
    """The pending mark, taken by the request about to use it: no other request of the block sees it."""
    mark = _pending.get()
    if mark is not None:
        _pending.set(None)
    return mark
