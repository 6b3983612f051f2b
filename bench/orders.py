"""Order ids for benchmarks: valid Salesforce Order ids that no real order will ever have."""

from __future__ import annotations

import random
import string

from notifier import normalize_order_id


def new_order_ids(count: int) -> list[str]:
    alphabet = string.ascii_letters + string.digits
    ids = set()
    while len(ids) < count:
        ids.add(normalize_order_id("801" + "".join(random.choices(alphabet, k=12))))
    return [i for i in ids if i]
