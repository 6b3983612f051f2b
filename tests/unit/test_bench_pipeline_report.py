"""The pipeline's table with the naive chain beside ours, rendered from a real (small) run's
results: `python -m bench --scenario pipeline --orders 200` on a shared two-core machine."""

from __future__ import annotations

import json
from pathlib import Path

from bench import report

SAMPLE = Path(__file__).with_name("bench_pipeline_sample.json")


def lines_starting(table: str, prefix: str) -> list[str]:
    return [line for line in table.splitlines() if line.startswith(prefix)]


def test_ours_the_naive_chain_and_their_ratio_get_a_row_per_latency() -> None:
    result = json.loads(SAMPLE.read_text())

    table = report.render({"pipeline": result})

    assert table.count("### pipeline:") == 1 and "beside a naive three-task Celery chain" in table
    for latency in ("0 ms", "50 ms"):
        assert len(lines_starting(table, f"| ours, {latency} |")) == 2  # runs, then commands
        assert len(lines_starting(table, f"| naive chain, {latency} |")) == 2
        assert len(lines_starting(table, f"| ours / naive, {latency} |")) == 1
    ratio = result["latency_0ms"]["ratio_to_naive"]["flood_orders_per_second"]
    assert f"| {ratio} |" in lines_starting(table, "| ours / naive, 0 ms |")[0]
    commands = lines_starting(table, "| ours, 0 ms |")[1]
    assert "EVALSHA" in commands and "PUBLISH" in commands  # event store's top, broker's top


def test_the_targets_line_says_met_missed_or_not_measured() -> None:
    result = json.loads(SAMPLE.read_text())
    targets = result["targets"]
    targets.update(throughput_at_least_0_7_of_naive=True, commands_at_most_60_per_order=False)
    targets["paced_p99_under_50_ms_at_20_per_second"] = None

    table = report.render({"pipeline": result})

    line = lines_starting(table, "Targets (issue #14")[0]
    assert "at least 0.7: met" in line
    assert "at 20 orders/s: not measured at that rate" in line
    assert "end to end: **missed**" in line


def test_a_sides_floods_give_its_orders_over_their_summed_spans_and_each_floods_rate() -> None:
    from bench.pipeline import _naive_timings

    # Two floods of 4 orders: the first takes 2 s, the second 0.5 s (one order never arrived).
    first = {
        "sent": {f"a{i}": 10.0 for i in range(4)},
        "arrived": {f"a{i}": 11.0 + i / 3 for i in range(4)},
    }
    second = {
        "sent": {f"b{i}": 50.0 for i in range(4)},
        "arrived": {f"b{i}": 50.5 for i in range(3)},
    }

    timings = _naive_timings([first, second], 4)

    assert timings["orders_per_second"] == round(7 / 2.5, 1)  # not the mean of 2 and 6
    assert timings["orders_per_second_each_run"] == [2.0, 6.0]
    assert timings["outcomes"] == {"completed": 7, "missing": 1}


def test_the_table_shows_each_floods_rate_after_the_sides() -> None:
    result = json.loads(SAMPLE.read_text())
    result["latency_0ms"]["flood"].update(
        orders_per_second=50.0, orders_per_second_each_run=[48.1, 52.2]
    )

    table = report.render({"pipeline": result})

    assert "| 50.0 (48.1, 52.2) |" in lines_starting(table, "| ours, 0 ms |")[0]
