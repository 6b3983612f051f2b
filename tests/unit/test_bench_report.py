"""The BENCHMARKS.md table is regenerated from the committed results without touching the
prose around it."""

from __future__ import annotations

import shutil
from pathlib import Path

import pytest

from bench import report

RESULTS = Path(__file__).resolve().parents[2] / "bench" / "results"


@pytest.fixture
def results(tmp_path: Path) -> Path:
    copied = tmp_path / "results"
    copied.mkdir()
    for name in ("fanout", "leak", "pipeline"):
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
    for heading in ("### fanout:", "### leak:", "### pipeline:"):
        assert text.count(heading) == 1, heading
    assert "| latency p99 (ms) |" in text and "| Redis connections held" in text
