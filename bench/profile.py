"""Optional py-spy profile of one phase of a benchmark (`BENCH_PROFILE=1`).

Only the phase under study is sampled (a burst, not the connecting before it), so the profile
answers "where does the time of this phase go". Output: bench/results/profile-<name>.txt in
py-spy's collapsed-stack format, one stack per line (feed it to flamegraph.pl or read the
summary `python -m bench.profile FILE` prints).
"""

from __future__ import annotations

import os
import shutil
import signal
import subprocess
import sys
from collections import Counter
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

RESULTS = Path(__file__).resolve().parent / "results"
#: Frames where a thread or greenlet waits (gevent's loop, its idle thread pool).
_IDLE = ("Hub.run (gevent/hub.py", "acquire_with_timeout (gevent/_threading.py")


@contextmanager
def profiled(
    pid: int, name: str, subprocesses: bool = False, this_time: bool = True
) -> Iterator[Path | None]:
    """Sample process `pid` (and its children) with py-spy during the block, when asked to
    (`BENCH_PROFILE`; and `this_time`, where a phase repeats)."""
    spy = shutil.which("py-spy") or str(Path(sys.executable).with_name("py-spy"))
    if not (this_time and os.environ.get("BENCH_PROFILE")) or not Path(spy).exists():
        yield None
        return
    RESULTS.mkdir(exist_ok=True)
    out = RESULTS / f"profile-{name}.txt"
    # --nonblocking: sampling never pauses the process under test (a paused sandbox missed
    # its clients' timeouts).
    command = [spy, "record", "--pid", str(pid), "--rate", "250", "--format", "raw",
               "-o", str(out), "--nonblocking"]  # fmt: skip
    command += ["--subprocesses"] if subprocesses else []
    process = subprocess.Popen(command, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    try:
        yield out
    finally:
        process.send_signal(signal.SIGINT)  # py-spy writes its file on SIGINT
        process.wait(timeout=30)


def summary(path: Path, top: int = 25) -> str:
    """The functions with the most samples: their own, and including what they call."""
    own: Counter[str] = Counter()
    inclusive: Counter[str] = Counter()
    total = 0
    for line in path.read_text().splitlines():
        stack, _, count = line.rpartition(" ")
        frames, samples = stack.split(";"), int(count)
        if any(idle in frames[-1] for idle in _IDLE):
            continue  # waiting, not working
        total += samples
        own[frames[-1]] += samples
        for frame in set(frames):
            inclusive[frame] += samples
    lines = [f"{total} busy samples", "-- own time"]
    lines += [f"{n / total:6.1%}  {f[:140]}" for f, n in own.most_common(top)]
    lines += ["-- including callees"]
    lines += [f"{n / total:6.1%}  {f[:140]}" for f, n in inclusive.most_common(top * 2)]
    return "\n".join(lines)


if __name__ == "__main__":
    print(summary(Path(sys.argv[1])))
