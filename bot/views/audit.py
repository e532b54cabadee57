"""The audit chain's head as posted to AUDIT_CHANNEL, and reading it back.

The post is for people (what it is, how to check it) and for `resolvemeq audit verify
--anchors`, which finds the entry number and hash in it again with `parse_anchor`.
"""

from __future__ import annotations

import re
from datetime import datetime
from typing import Any

from models import as_utc

_ANCHOR = re.compile(r"entry #(\d+), sha256 ([0-9a-f]{64})")


def anchor_text(seq: int, chain_hash: str, signature: str | None, at: datetime) -> str:
    """The daily post of the chain's head.

    Args:
        seq: the head entry's number. chain_hash: its hash (64 hex digits).
        signature: its HMAC under AUDIT_SIGNING_KEY, or None when unsigned.
        at: when it was read.
    """
    signed = f" (HMAC {signature[:16]}…)" if signature else " (unsigned: AUDIT_SIGNING_KEY is not set)"
    return (f":link: Audit chain head at {as_utc(at):%Y-%m-%d %H:%M} UTC: "
            f"entry #{seq}, sha256 {chain_hash}{signed}.\n"
            "Kept here, outside the database: `resolvemeq audit verify --anchors` checks that "
            "the audit trail still passes through it.")


def parse_anchor(text: str) -> tuple[int, str] | None:
    """The (entry number, hash) an anchor post names, or None for any other text."""
    found = _ANCHOR.search(text or "")
    return None if found is None else (int(found.group(1)), found.group(2))


def verify_text(report: Any, *, anchors_asked: bool) -> str:
    """What `resolvemeq audit verify` prints (duck-typed on audit_verify.Report).

    The first line says whether the chain holds; on failure the problems follow, the
    first one first (the row or entry it names is where to start looking).
    """
    head = report.head
    lines = [
        f"audit chain: {report.entries:,} {'entry' if report.entries == 1 else 'entries'}"
        + (f", head #{head.seq} {head.hash[:16]}…" if head else "")
        + f", {report.signed:,} signed"
        + (" (signatures checked)" if report.signatures_checked
           else " (signatures not checked: AUDIT_SIGNING_KEY is not set)")
        + f", {report.redacted:,} redacted"
    ]
    if anchors_asked:
        lines.append(f"anchors: {report.anchors_checked} posted heads read from AUDIT_CHANNEL"
                     + ("" if report.anchors_checked else "; none posted yet, nothing to compare"))
    if report.ok:
        lines.insert(0, "OK: every row is as it was chained"
                     + (", and the chain passes through every posted head" if report.anchors_checked
                        else ""))
        return "\n".join(lines)
    plural = "" if report.problem_count == 1 else "s"
    lines.insert(0, f"FAILED: {report.problem_count} problem{plural}; the first: "
                 f"{report.problems[0].message}")
    lines.extend(f"  - {problem.message}" for problem in report.problems)
    if report.problem_count > len(report.problems):
        lines.append(f"  ... and {report.problem_count - len(report.problems)} more")
    return "\n".join(lines)
