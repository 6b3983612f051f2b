"""Pure pieces of the sandbox: Salesforce ids, PHP encodings, the SOQL parser, fault rules."""

from __future__ import annotations

import base64

import pytest

from sandbox import ids, php, soql
from sandbox.errors import ControlError
from sandbox.faults import FaultRegistry
from sandbox.state import World

# --- ids -------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("id15", "id18"),
    [("00558000001N0Ke", "00558000001N0KeAAK"), ("001A0000006Vm9r", "001A0000006Vm9rIAC")],
)
def test_to18_matches_published_examples(id15: str, id18: str) -> None:
    assert ids.to18(id15) == id18


def test_normalize_accepts_15_and_18_and_any_suffix_case() -> None:
    assert ids.normalize("001A0000006Vm9r") == "001A0000006Vm9rIAC"
    assert ids.normalize("001A0000006Vm9rIAC") == "001A0000006Vm9rIAC"
    assert ids.normalize("001A0000006Vm9riac") == "001A0000006Vm9rIAC"


@pytest.mark.parametrize("bad", ["", "001", "001A0000006Vm9rXXX", "001A0000006Vm9-IAC", None, 7])
def test_normalize_rejects_malformed(bad: object) -> None:
    assert ids.normalize(bad) is None


def test_new_ids_are_18_chars_with_prefix_and_valid_checksum() -> None:
    made = {ids.new_id("Order") for _ in range(200)}
    assert len(made) == 200
    for value in made:
        assert len(value) == 18 and value.startswith("801")
        assert ids.normalize(value) == value
        assert ids.is_id_of(value, "Order") and not ids.is_id_of(value, "Account")


# --- php -------------------------------------------------------------------------------------


def test_decode_form_builds_lists_and_dicts() -> None:
    pairs = [
        ("action", "AddOrder"),
        ("pid[0]", "1"),
        ("pid[1]", "3"),
        ("domain[]", "a.example"),
        ("domain[]", "b.example"),
        ("opts[size]", "L"),
        ("sparse[2]", "x"),
        ("deep[0][k]", "v"),
    ]
    assert php.decode_form(pairs) == {
        "action": "AddOrder",
        "pid": ["1", "3"],
        "domain": ["a.example", "b.example"],
        "opts": {"size": "L"},
        "sparse": {"2": "x"},
        "deep": [{"k": "v"}],
    }


def test_later_pairs_win_and_arrays_replace_scalars() -> None:
    assert php.decode_form([("a", "1"), ("a", "2")]) == {"a": "2"}
    assert php.decode_form([("a", "1"), ("a[0]", "2")]) == {"a": ["2"]}


@pytest.mark.parametrize(
    ("raw", "expected"), [("", False), ("0", False), ("1", True), ("False", True)]
)
def test_truthy_is_php_bool(raw: str, expected: bool) -> None:
    assert php.truthy(raw) is expected


def test_serialize_round_trips() -> None:
    value = {1: "801ABCDEFGHIJKLMNO", "name": "Ünïcode", "n": 5, "f": 1.5, "b": True, "z": None}
    text = php.serialize(value)
    assert text.startswith('a:6:{i:1;s:18:"801ABCDEFGHIJKLMNO";')
    assert 's:9:"Ünïcode"' in text  # lengths count UTF-8 bytes
    assert php.unserialize(text) == value


def test_unserialize_reads_php_output_and_nested_arrays() -> None:
    assert php.unserialize('a:1:{i:5;s:18:"801000000000001AAA";}') == {5: "801000000000001AAA"}
    assert php.unserialize('a:1:{i:0;a:1:{s:1:"k";b:0;}}') == {0: {"k": False}}


@pytest.mark.parametrize(
    "bad", ["", "a:1:{", 's:5:"abc";', "x:1;", "i:1;junk", 'a:1:{i:1;s:1:"a"}']
)
def test_unserialize_rejects_garbage(bad: str) -> None:
    with pytest.raises(php.PhpFormatError):
        php.unserialize(bad)


def test_decode_customfields() -> None:
    encoded = base64.b64encode(b'a:1:{i:1;s:18:"801000000000001AAA";}').decode()
    assert php.decode_customfields(encoded) == {"1": "801000000000001AAA"}
    assert php.decode_customfields(encoded.rstrip("=")) == {"1": "801000000000001AAA"}
    with pytest.raises(php.PhpFormatError):
        php.decode_customfields(base64.b64encode(b's:1:"x";').decode())


# --- soql ------------------------------------------------------------------------------------


def test_parse_full_query() -> None:
    query = soql.parse(
        "select Id, Quantity, Product2.WHMCS_Product_Id__c FROM OrderItem "
        "WHERE OrderId = '801\\'x' AND Quantity >= 2 AND Status IN ('A', 'B') "
        "AND Name != null ORDER BY Quantity DESC NULLS FIRST, Id LIMIT 10 OFFSET 5"
    )
    assert query.fields == ("Id", "Quantity", "Product2.WHMCS_Product_Id__c")
    assert query.sobject == "OrderItem"
    assert [(c.path, c.op) for c in query.where] == [
        ("OrderId", "="),
        ("Quantity", ">="),
        ("Status", "in"),
        ("Name", "!="),
    ]
    assert query.where[0].values[0] == soql.Literal("string", "801'x")
    assert query.where[2].values == (soql.Literal("string", "A"), soql.Literal("string", "B"))
    assert query.where[3].values[0].kind == "null"
    assert query.order_by == (
        soql.Ordering("Quantity", True, False),
        soql.Ordering("Id", False, False),
    )
    assert (query.limit, query.offset) == (10, 5)


def test_parse_escapes_as_format_soql_writes_them() -> None:
    query = soql.parse(r"SELECT Id FROM Order WHERE Description = 'a\\b\nc\"d'")
    assert query.where[0].values[0].value == 'a\\b\nc"d'


@pytest.mark.parametrize(
    "bad",
    [
        "",
        "SELECT FROM Order",
        "SELECT Id Order",
        "SELECT Id FROM Order WHERE",
        "SELECT Id FROM Order WHERE Id = ",
        "SELECT Id FROM Order WHERE Id = 'a' OR Id = 'b'",
        "SELECT Id FROM Order LIMIT x",
        "SELECT Id FROM Order WHERE Id = 'unterminated",
        "SELECT Id, FROM Order",
        "SELECT Id FROM Order WHERE Id = 'a\\q'",
        "SELECT Id FROM Order extra",
    ],
)
def test_parse_rejects_malformed(bad: str) -> None:
    with pytest.raises(soql.SoqlError):
        soql.parse(bad)


# --- faults ----------------------------------------------------------------------------------


def test_faults_consume_times_and_keep_modes_in_order() -> None:
    registry = FaultRegistry(["get", "update"])
    registry.add({"action": "update", "mode": "error", "times": 1})
    registry.add({"action": "*", "mode": "http500", "times": 1})
    registry.add({"action": "update", "latencyMs": 5})
    first, second, third = (registry.take("update") for _ in range(3))
    assert (first.mode, first.latency) == ("error", 0.005)
    assert (second.mode, second.latency) == ("http500", 0.005)
    assert (third.mode, third.latency) == (None, 0.005)
    assert registry.take("get").mode is None
    assert [f["remaining"] for f in registry.list()] == [0, 0, None]


def test_wildcard_skips_and_mode_restrictions() -> None:
    registry = FaultRegistry(
        ["token", "get"], wildcard_skips=["token"], mode_actions={"limit": ["get"]}
    )
    registry.add({"action": "*", "mode": "error"})
    assert registry.take("token").mode is None
    assert registry.take("GET").mode == "error"
    with pytest.raises(ControlError):
        registry.add({"action": "token", "mode": "limit"})


# --- the item index --------------------------------------------------------------------------


def test_an_orders_items_are_found_by_their_index_as_added_moved_removed_and_reloaded() -> None:
    world = World()
    data = world.salesforce
    for item_id, order_id in (("i1", "o1"), ("i2", "o2"), ("i3", "o1")):
        data.insert("OrderItem", {"Id": item_id, "OrderId": order_id})
    assert [i["Id"] for i in data.items_of("o1")] == ["i1", "i3"]

    data.order_items["i1"]["OrderId"] = "o2"  # what a PATCH does, then tells the index
    data.index("OrderItem", data.order_items["i1"])
    data.remove("OrderItem", "i2")
    assert [i["Id"] for i in data.items_of("o1")] == ["i3"]
    assert [i["Id"] for i in data.items_of("o2")] == ["i1"]

    saved = world.to_json()
    assert "_items_by_order" not in saved["salesforce"]  # derived, never saved
    reloaded = World.from_json(saved).salesforce
    assert [i["Id"] for i in reloaded.items_of("o2")] == ["i1"]
    assert reloaded.items_of("o3") == []
