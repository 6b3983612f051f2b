"""The BENCHMARKS.md table is regenerated from the committed results without touching the
prose around it."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import pytest

from bench import report

RESULTS = Path(__file__).resolve().parents[2] / "bench" / "results"


@pytest.fixture
def results(tmp_path: Path) -> Path:
    copied = tmp_path / "results"
    copied.mkdir()
    for name in ("fanout", "leak", "pipeline", "storm"):
        shutil.copy(RESULTS / f"{name}.json", copied)
    return copied


def test_the_table_covers_every_scenario_and_keeps_the_prose(results, tmp_path, monkeypatch):
    target = tmp_path / "BENCHMARKS.md"
    target.write_text(f"# Intro\n\n{report.START}\nold table\n{report.END}\n\n## Analysis\n")
    monkeypatch.setattr(report, "BENCHMARKS", target)

    report.write_benchmarks_md(results)

    text = target.read_text()
    assert text.startswith("# Intro\n") and text.endswith("## Analysis\n")
    assert "old table" not in text
    for heading in ("### fanout:", "### leak:", "### pipeline:", "### storm:"):
        assert text.count(heading) == 1, heading
    assert "| latency p99 (ms) |" in text and "| Redis connections held" in text
    for row in (
        "| ours: cold",
        "| ours: warm",
        "| ours: restart",
        "| stock: connect",
        "| stock: restart",
    ):
        assert text.count(row) == 1, row


def test_the_storm_table_shows_refusals_streams_never_served_and_missed_targets(results):
    storm = json.loads((results / "storm.json").read_text())
    cold = storm["ours"]["cold"]
    cold.update(refused=7, refused_by_reason={"overloaded": 5, "http-429": 2}, unserved=3)
    cold["all_served_seconds"] = None
    storm["targets"]["zero_refused"] = False

    table = report.render({"storm": storm})

    cold_row = next(line for line in table.splitlines() if line.startswith("| ours: cold"))
    assert "| 7 (overloaded 5, http-429 2) |" in cold_row
    assert (
        f"not all: 3 unserved after {storm['parameters']['phase_deadline_seconds']} s" in cold_row
    )
    assert "zero refused: **missed**" in table
    stock_row = next(line for line in table.splitlines() if line.startswith("| stock: connect"))
    assert stock_row.count("|  |") >= 2  # no Salesforce figure and no ratio for stock


def test_each_fanout_run_says_how_the_cores_were_shared_and_when_it_was_slow(results):
    fanout = json.loads((results / "fanout.json").read_text())
    fanout["parameters"]["publisher_nice"] = 19
    cores = {"web": 0.57, "redis": 0.26, "load_generator": 0.16, "rest": 0.97, "idle": 0.04}
    trace = {"window_s": 0.25, "windows": 56, "slow_windows": 2,
             "worst": [{"at_s": 3.5, "events": 900, "p99_ms": 234.2}]}  # fmt: skip
    fanout["ours_runs"][1].update(
        burst_cores=cores, web_cpu_us_per_delivery=118.5, from_commit_over_time=trace
    )
    # A run recorded before these were.
    for absent in ("burst_cores", "web_cpu_us_per_delivery", "from_commit_over_time"):
        fanout["ours_runs"][0].pop(absent, None)

    table = report.render({"fanout": fanout})

    runs = [line for line in table.splitlines() if line.startswith(("| 1 |", "| 2 |"))]
    assert runs[1].endswith("| 2 of 56 (234.2) | 0.57 / 0.26 / 0.16 / 0.97 / 0.04 | 118.5 |")
    assert runs[0].endswith("| n/a | n/a | n/a |"), runs
    assert "at nice 19" in table
