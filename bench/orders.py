"""Order ids for benchmarks: valid Salesforce Order ids that no real order will ever have."""

from __future__ import annotations

import random
import string

from notifier import normalize_order_id


def new_order_ids(count: int) -> list[str]:
    alphabet = string.ascii_letters + string.digits
    ids: set[str] = set()
    while len(ids) < count:
        order_id = normalize_order_id("801" + "".join(random.choices(alphabet, k=12)))
        if order_id:
            ids.add(order_id)
    return list(ids)
