"""Reading a source a few pages ahead, in a thread of its own, while the sync works on the page before.

Parsing a CSV block (Arrow's C++ reader) and waiting for a database's next ``fetchmany`` page hold no
lock that the sync needs, so a second core reads while the first classifies, prepares and sends: the
run takes about the longer of the two rather than their sum. At most ``depth`` pages wait, so memory
stays a few pages, and the source is read in order by that one thread, so a cursor or a file is never
used by two threads at once. An error of the source is raised where the sync asks for its next page.
"""

from __future__ import annotations

import threading
from collections.abc import Iterable, Iterator
from contextlib import contextmanager
from queue import Empty, Full, Queue
from typing import Generic, TypeVar

T = TypeVar("T")
DEFAULT_DEPTH = 2
# How often a reader blocked on a full queue looks whether the sync has stopped asking.
_POLL_SECONDS = 0.05


class _End(Generic[T]):
    def __init__(self, error: BaseException | None = None) -> None:
        self.error = error


@contextmanager
def read_ahead(items: Iterable[T], depth: int = DEFAULT_DEPTH) -> Iterator[Iterator[T]]:
    """``items`` in order, read ahead by a thread that the context's exit stops and waits for (so that
    the source can be closed after it)."""
    queue: Queue[T | _End[T]] = Queue(maxsize=depth)
    stopped = threading.Event()

    def put(item: T | _End[T]) -> bool:
        while not stopped.is_set():
            try:
                queue.put(item, timeout=_POLL_SECONDS)
                return True
            except Full:
                continue
        return False

    def read() -> None:
        try:
            for item in items:
                if not put(item):
                    return
        except BaseException as exc:  # handed to the consumer, which raises it
            put(_End(exc))
            return
        put(_End())

    def consume() -> Iterator[T]:
        while True:
            item = queue.get()
            if isinstance(item, _End):
                if item.error is not None:
                    raise item.error
                return
            yield item

    reader = threading.Thread(target=read, name="optimizely-read-ahead", daemon=True)
    reader.start()
    try:
        yield consume()
    finally:
        stopped.set()
        while reader.is_alive():  # a reader blocked on a full queue sees ``stopped`` within a poll
            try:
                queue.get_nowait()
            except Empty:
                reader.join(_POLL_SECONDS)
        close = getattr(items, "close", None)
        if close is not None:
            close()
