"""Forcing the interleaving a race needs, so a concurrency test fails every time.

Two threads started at one barrier may still run one after the other (the first
finishes before the second is scheduled), and a lost update then shows once in a
while. `all_read_first` holds each thread right after its first statement that
matches a pattern until every thread has run one: all of them have read before any
of them writes. Where the database serialises them (a row lock, SQLite's write lock
taken at BEGIN IMMEDIATE), the others cannot reach the statement while the first
waits, so the first goes on after `wait` seconds and the others read what it wrote.
"""

from __future__ import annotations

import re
import threading
from collections.abc import Iterator
from contextlib import contextmanager

from sqlalchemy import Engine, event


@contextmanager
def all_read_first(engine: Engine, pattern: str, *, parties: int = 2, wait: float = 1.0) -> Iterator[None]:
    """While inside, hold each thread after its first statement matching `pattern`.

    Args:
        engine: the engine the threads' sessions use.
        pattern: a regular expression searched in each statement's SQL.
        parties: how many threads must get there before any goes on.
        wait: the longest a thread waits for the others (they may be unable to come).
    """
    meeting = threading.Barrier(parties, timeout=wait)
    local = threading.local()
    wanted = re.compile(pattern, re.IGNORECASE | re.DOTALL)

    def after(_conn, _cursor, statement, _parameters, _context, _executemany) -> None:
        if getattr(local, "met", False) or not wanted.search(statement):
            return
        local.met = True
        try:
            meeting.wait()
        except threading.BrokenBarrierError:
            pass  # another thread could not come: it waits for this one's transaction

    event.listen(engine, "after_cursor_execute", after)
    try:
        yield
    finally:
        event.remove(engine, "after_cursor_execute", after)
