"""bench/ cannot rot unseen: every module imports, says what it is for, and every
script keeps its command line and its quick mode. Also the pure helpers the reports
rest on (percentiles, the request mix, tables) and the process accounting.
"""

from __future__ import annotations

import contextlib
import importlib
import io
import os
import pkgutil
import subprocess
import sys
import time

import pytest

import bench
from bench import procstat
from bench.load import percentile
from bench.mix import Mix
from bench.report import markdown_table, ms

MODULES = sorted(info.name for info in pkgutil.iter_modules(bench.__path__))
# Each script's quick flag, as `--help` lists it (docs/BENCHMARKS.md gives the commands).
SCRIPTS = ("ack_path", "saturation", "memory", "decision_cpu", "followup_sweep", "queries",
           "seed", "bare_bolt", "slow_agent", "audit_chain", "production", "ack_cpu")


@pytest.mark.parametrize("name", MODULES)
def test_every_bench_module_imports_and_says_what_it_is_for(name):
    module = importlib.import_module(f"bench.{name}")
    assert module.__doc__ and len(module.__doc__.strip()) > 40, f"bench/{name}.py needs a docstring"


def test_the_scripts_are_all_there():
    assert set(SCRIPTS) <= set(MODULES)


@pytest.mark.parametrize("name", SCRIPTS)
def test_every_script_offers_a_quick_mode(name):
    module = importlib.import_module(f"bench.{name}")
    out = io.StringIO()
    with contextlib.redirect_stdout(out), pytest.raises(SystemExit) as exit_:
        module.main(["--help"])
    assert exit_.value.code == 0
    assert "--quick" in out.getvalue()


def test_a_bad_bench_database_name_is_refused_before_anything_is_dropped():
    from bench import seed

    with pytest.raises(SystemExit) as exit_:
        seed.main(["--quick", "--database", "resolvemeq"])
    assert "a bench database name starts with resolvemeq_bench_" in str(exit_.value.code)


def test_percentile_is_nearest_rank():
    values = [float(n) for n in range(1, 101)]
    assert percentile(values, 50) == 50.0
    assert percentile(values, 99) == 99.0
    assert percentile(values, 100) == 100.0
    assert percentile([7.0], 99) == 7.0
    assert percentile([], 50) != percentile([], 50)  # nan: nothing measured


def test_nothing_measured_is_shown_as_a_dash():
    assert ms(float("nan")) == "–"
    assert ms(0.0123) == "12.3"


def test_markdown_table_has_a_header_rule_and_one_line_per_row():
    table = markdown_table(["run", "p99"], [["25 req/s", "10.0"], ["50 req/s", "11.1"]])
    assert table.splitlines() == ["| run | p99 |", "|---|---|", "| 25 req/s | 10.0 |",
                                  "| 50 req/s | 11.1 |"]


def test_the_mix_has_the_shares_it_was_given():
    mix = Mix([(1, "1732527000.000100"), (2, "1732527000.000200")], ticket_share=0.5,
              stranger_share=0.2)
    kinds = [request.kind for request in mix.take(200)]
    assert kinds.count("ticket") == 100
    assert kinds.count("stranger") == 20  # a fifth of the 100 clicks
    assert kinds.count("click") == 80
    assert "ticket,ticket" not in ",".join(kinds)  # spread evenly, not bunched


def test_load_counts_this_process_as_the_benchmarks():
    load = procstat.Load()
    spin_until = time.process_time() + 0.2
    while time.process_time() < spin_until:
        pass
    load.measure()
    assert load.bench > 0
    assert load.busy > 0


def test_a_process_is_seen_with_its_children_memory_and_cpu():
    child = subprocess.Popen([sys.executable, "-c", "import time; print('ready', flush=True); "
                              "time.sleep(30)"], stdout=subprocess.PIPE, text=True)
    try:
        assert child.stdout is not None and child.stdout.readline() == "ready\n"
        assert child.pid in procstat.children(os.getpid())
        assert procstat.rss_kib(child.pid) > 1024  # a Python interpreter: megabytes
        meter = procstat.CpuMeter({"sleeper": [child.pid]})
        assert "sleeper" not in meter.stop()  # asleep: no CPU to its name
    finally:
        child.kill()
        child.wait()
    assert procstat.rss_kib(child.pid) == 0
    assert procstat.cpu_seconds(child.pid) == 0.0


def test_the_cpu_meter_says_how_many_cores_nobody_used_when_asked():
    meter = procstat.CpuMeter(idle=True)
    time.sleep(0.2)
    used = meter.stop()
    assert 0.0 <= used["idle"] <= (os.cpu_count() or 1)
    assert "idle" not in procstat.CpuMeter().stop()


def test_only_postgresql_backends_are_told_apart_by_database():
    # Not a PostgreSQL process: a shared service (Redis), whatever the database.
    assert procstat.serves_database(os.getpid(), "redis-server", "resolvemeq_bench_x")
    # A process that is gone cannot be read: counted as a shared service, not dropped.
    assert procstat.serves_database(2**22 + 12345, "postgres", "resolvemeq_bench_x")
