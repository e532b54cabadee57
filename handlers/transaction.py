"""The request's transaction: opened by a middleware, committed by the acknowledgement.

`open_transaction` gives every request a `UnitOfWork` whose session listeners take by
name (`session`). Its `ack` commits before it acknowledges; when a listener raises
instead, the error handler (`handlers.errors`) ends the transaction with the error.

Why the ack commits, and not the middleware after `next()`: Bolt for Python runs a
global middleware's code before the listener (`next()` only records that the chain
goes on; `App.dispatch` then runs the listener), so no middleware can wrap a listener
and commit after it. The ack is the right moment anyway:
- it is our word that the request was taken, so it must follow the commit: a commit
  that fails raises out of `ack()` and the person hears "nothing was saved", never
  "ticket received";
- listeners hand slow work to the background executor after their ack, so that work
  never starts before the rows it reads are committed, and never shares the request's
  connection;
- with `process_before_response=True` the acknowledgement is the HTTP response, sent
  when the listener returns, so committing first adds no wait the person would not
  have had anyway.
After the commit the session is closed for good (`close_resets_only=False`): touching it
after the ack raises rather than opening a second transaction nobody would end.

The session connects on its first statement: a request refused before it reads
anything (a tampered button, a cancel click) takes no connection and commits nothing.
"""

from __future__ import annotations

from collections.abc import Callable

from slack_bolt import Ack, BoltContext, BoltResponse

from models import UnitOfWork

CONTEXT_KEY = "unit_of_work"


class CommittingAck(Ack):
    """`ack()` that commits the request's transaction first."""

    def __init__(self, work: UnitOfWork) -> None:
        super().__init__()
        self._work = work

    def __call__(self, *args, **kwargs) -> BoltResponse:
        self._work.commit()
        return super().__call__(*args, **kwargs)


def open_transaction(context: BoltContext, next: Callable[[], None]) -> None:
    """Bolt middleware: a unit of work for this request, its session and its ack."""
    work = UnitOfWork(context["deps"].runtime.sessions(close_resets_only=False))
    context[CONTEXT_KEY] = work
    context["session"] = work.session
    context["ack"] = CommittingAck(work)
    return next()


def committed(context: BoltContext) -> bool:
    """Whether the request's transaction was committed (by its ack)."""
    work = context.get(CONTEXT_KEY)
    return work is not None and work.committed


def end_transaction(context: BoltContext, error: BaseException) -> BaseException:
    """End the request's transaction after `error`; returns the error to answer for.

    That is `error` itself, unless keeping its audited denial failed: then the failed
    commit is what the person must hear about (nothing was saved).
    """
    work = context.get(CONTEXT_KEY)
    if work is None:
        return error
    try:
        work.fail(error)
    except Exception as failed:  # the commit of an audited denial: an outage
        return failed
    return error
