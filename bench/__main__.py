"""`make bench` / `python -m bench [--scenario S] [--quick] [--streams N] [--storm-streams N] ...`.

Runs each scenario in one invocation, ours beside stock flask-sse where there is a stock side,
prints one JSON line per scenario, writes bench/results/<scenario>.json (machine, versions,
parameters, figures) and regenerates the table in BENCHMARKS.md.
"""

from __future__ import annotations

import argparse
import json
import time
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from .environment import machine, private_stack

RESULTS = Path(__file__).resolve().parent / "results"
SCENARIOS = ("fanout", "leak", "pipeline", "storm", "listener")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--scenario", choices=SCENARIOS, action="append")
    parser.add_argument("--streams", type=int, default=10_000, help="fanout streams")
    parser.add_argument("--leak-streams", type=int, default=2_000)
    parser.add_argument("--orders", type=int, default=1_000, help="pipeline orders per latency")
    parser.add_argument("--storm-streams", type=int, default=10_000, help="storm streams")
    parser.add_argument("--approvals", type=int, default=2_000, help="listener burst size")
    parser.add_argument("--quick", action="store_true", help="small sizes, for a smoke run")
    args = parser.parse_args()
    if args.quick:
        args.streams, args.leak_streams, args.orders, args.storm_streams = 1_000, 300, 100, 1_000
        args.approvals = 300
    for scenario in args.scenario or SCENARIOS:
        result = run(scenario, args)
        print(json.dumps(result), flush=True)
        RESULTS.mkdir(exist_ok=True)
        (RESULTS / f"{scenario}.json").write_text(json.dumps(result, indent=2) + "\n")
    from .report import write_benchmarks_md

    write_benchmarks_md(RESULTS)


def run(scenario: str, args: argparse.Namespace) -> dict[str, Any]:
    started = time.monotonic()
    with private_stack():
        if scenario == "fanout":
            from . import fanout

            figures = fanout.run(streams=args.streams)
        elif scenario == "leak":
            from . import leak

            figures = leak.run(streams=args.leak_streams)
        elif scenario == "storm":
            from . import storm

            figures = storm.run(streams=args.storm_streams)
        elif scenario == "listener":
            from . import listener

            figures = listener.run(approvals=args.approvals)
        else:
            from . import pipeline

            figures = pipeline.run(orders=args.orders)
    return {
        "scenario": scenario,
        "measured_at": datetime.now(UTC).isoformat(timespec="seconds"),
        "duration_seconds": round(time.monotonic() - started, 1),
        "machine": machine(),
        **figures,
    }


if __name__ == "__main__":
    main()
