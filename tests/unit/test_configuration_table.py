"""The README's configuration table and the settings agree: every variable the settings read
is listed with its default, and the table lists nothing they do not read."""

from __future__ import annotations

import re
from pathlib import Path

import settings

README = Path(__file__).resolve().parents[2] / "README.md"
_NAME = re.compile(r"`([A-Z][A-Z0-9_]+)`")


def configuration_table() -> dict[str, str]:
    """Variable name -> its row's default column, from the first table under
    `## Configuration` (the tests' and benchmarks' own variables are in a later one)."""
    section = README.read_text().split("\n## Configuration\n", 1)[1]
    section = section.split("\n### ", 1)[0].split("\n## ", 1)[0]
    rows: dict[str, str] = {}
    for line in section.splitlines():
        cells = [cell.strip() for cell in line.strip().strip("|").split("|")]
        if len(cells) < 3 or not line.startswith("|"):
            continue
        for name in _NAME.findall(cells[0]):
            rows[name] = cells[1]
    return rows


def shown(default: object) -> str:
    if isinstance(default, float) and default.is_integer():
        return f"`{int(default)}`"
    return f"`{default}`"


def test_the_table_names_exactly_the_variables_the_settings_read() -> None:
    read, listed = set(settings.variables_read()), set(configuration_table())
    assert read - listed == set(), "read by the settings, missing from the README table"
    assert listed - read == set(), "in the README table, never read by the settings"


def test_the_table_gives_each_variables_default() -> None:
    table = configuration_table()
    wrong = {
        name: (shown(default), table[name])
        for name, default in settings.variables_read().items()
        if default not in (None, "") and shown(default) not in table[name]
    }
    assert wrong == {}


def test_the_check_sees_a_missing_row() -> None:
    """The table parser finds rows (so the checks above cannot pass on an empty table)."""
    table = configuration_table()
    assert len(table) > 50
    assert table["REDIS_URL"] == "`redis://127.0.0.1:6379/0`"
