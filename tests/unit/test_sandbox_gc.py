"""`python -m sandbox` keeps its young collections and all but stops the full ones, whose
pauses grow with the emulators' state (`sandbox.__main__`)."""

from __future__ import annotations

import gc

from sandbox.__main__ import FULL_COLLECTION_EVERY, collect_rarely


def test_only_the_oldest_generations_threshold_changes() -> None:
    saved = gc.get_threshold()
    try:
        collect_rarely()

        assert gc.get_threshold() == (saved[0], saved[1], FULL_COLLECTION_EVERY)
        assert gc.isenabled()
    finally:
        gc.set_threshold(*saved)
