"""How the benchmarks print what they measured: markdown tables, the machine line, JSON.

The reports are markdown so that a run can be pasted into docs/BENCHMARKS.md as it is.
"""

from __future__ import annotations

import json
from collections.abc import Iterable, Sequence
from pathlib import Path


def ms(seconds: float) -> str:
    """Seconds as milliseconds with one decimal; "–" for nan (nothing measured)."""
    return "–" if seconds != seconds else f"{seconds * 1000:.1f}"


def markdown_table(header: Sequence[str], rows: Iterable[Sequence[object]]) -> str:
    """A markdown table of `rows` under `header`."""
    lines = ["| " + " | ".join(header) + " |", "|" + "|".join("---" for _ in header) + "|"]
    lines += ["| " + " | ".join(str(c) for c in row) + " |" for row in rows]
    return "\n".join(lines)


def machine_lines(info: dict[str, str]) -> str:
    """The sentence that opens an HTTP benchmark's report (`machine.machine()`'s facts)."""
    return (f"Machine: {info['nproc']} cores ({info['cpu']}), memory {info['memory']}, "
            f"Python {info['python']}; {info['date']}; commit {info['revision']}; "
            f"load average at start {info['load_at_start']}.")


def save_json(path: str | None, data: dict) -> None:
    """Write `data` as JSON to `path`, when a path is given (`--json FILE`)."""
    if path:
        Path(path).write_text(json.dumps(data, indent=2, default=str))
