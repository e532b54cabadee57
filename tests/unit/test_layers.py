"""The layers of `bot/__init__.py` hold: no module imports a layer above its own, and
services, views and delivery never import Bolt or Celery (contracts in pyproject.toml).
"""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]


def test_every_layer_imports_only_the_layers_below_it():
    # In a child process: import-linter configures logging for itself, which would
    # silence the loggers other tests read.
    run = subprocess.run(
        [sys.executable, "-c", "from importlinter.cli import lint_imports_command as c; c()",
         "--no-cache"],
        cwd=ROOT, capture_output=True, text=True, timeout=120,
    )
    assert run.returncode == 0, run.stdout + run.stderr
    assert "0 broken" in run.stdout
