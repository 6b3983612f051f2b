"""Reading a Composite answer: each subrequest's body, or the failed one's error mapped by the
gateway's one error table (the others of an all-or-none call answer PROCESSING_HALTED)."""

from __future__ import annotations

from typing import Any

import pytest

from integrations import IntegrationError, PermanentError, TransientError
from integrations.salesforce import _composite_bodies, _items_paged, _order_read

HALTED = {"body": [{"errorCode": "PROCESSING_HALTED", "message": "rolled back"}]}


def result(reference: str, status: int, body: Any = None) -> dict[str, Any]:
    return {"body": body, "httpHeaders": {}, "httpStatusCode": status, "referenceId": reference}


def error(code: str, message: str = "it failed") -> list[dict[str, str]]:
    return [{"errorCode": code, "message": message}]


def test_the_bodies_come_by_reference_in_the_order_asked() -> None:
    answer = {"compositeResponse": [result("b", 200, {"records": []}), result("a", 204)]}
    assert _composite_bodies(answer, ["a", "b"]) == {"a": None, "b": {"records": []}}


@pytest.mark.parametrize(
    ("failed", "kind", "code"),
    [
        (result("read", 404, error("NOT_FOUND")), PermanentError, "SALESFORCE_NOT_FOUND"),
        (result("read", 400, error("MALFORMED_ID")), PermanentError, "SALESFORCE_NOT_FOUND"),
        (result("read", 400, error("UNABLE_TO_LOCK_ROW")), TransientError, "SALESFORCE_LOCKED"),
        (result("read", 403, error("REQUEST_LIMIT_EXCEEDED")), TransientError, "SALESFORCE_LIMIT"),
        (result("read", 401, error("INVALID_SESSION_ID")), TransientError, "SALESFORCE_SESSION"),
        (result("read", 500, error("UNKNOWN_EXCEPTION")), TransientError, "SALESFORCE_UNAVAILABLE"),
        (result("read", 503, "<html>"), TransientError, "SALESFORCE_UNAVAILABLE"),
        (result("read", 400, error("INVALID_FIELD")), PermanentError, "SALESFORCE_ERROR"),
    ],
)
def test_the_failed_subrequest_is_mapped_whichever_place_it_has(
    failed: dict[str, Any], kind: type[IntegrationError], code: str
) -> None:
    for results in (
        [{**result("write", 400), **HALTED}, failed],
        [failed, {**result("write", 400), **HALTED}],
    ):
        with pytest.raises(kind) as caught:
            _composite_bodies({"compositeResponse": results}, ["write", "read"])
        assert caught.value.code == code
        assert caught.value.system == "salesforce"


def test_only_halted_subrequests_are_still_an_error() -> None:
    answer = {"compositeResponse": [{**result("a", 400), **HALTED}]}
    with pytest.raises(PermanentError) as caught:
        _composite_bodies(answer, ["a"])
    assert caught.value.code == "SALESFORCE_ERROR" and "PROCESSING_HALTED" in caught.value.message


@pytest.mark.parametrize(
    "answer",
    [
        None,
        [],
        {"totalSize": "x", "done": "y", "records": "nope"},
        {"compositeResponse": "nope"},
        {"compositeResponse": ["nope"]},
        {"compositeResponse": [{**result("a", 200), "httpStatusCode": "200"}]},
        {"compositeResponse": [{**result("a", 200), "httpStatusCode": True}]},
        {"compositeResponse": [result("a", 200)]},  # "b" is missing
    ],
)
def test_an_answer_of_the_wrong_shape_is_a_bad_response(answer: Any) -> None:
    with pytest.raises(PermanentError) as caught:
        _composite_bodies(answer, ["a", "b"])
    assert caught.value.code == "SALESFORCE_BAD_RESPONSE"


def test_the_order_read_never_selects_a_field_twice() -> None:
    soql = _order_read(("AccountId", "Account.X__c"), ("Id", "Quantity", "Product2.Name"))
    assert soql == (
        "SELECT Id, AccountId, OrderNumber, EffectiveDate, Account.X__c, "
        "(SELECT Quantity, UnitPrice, Product2.Name, Id FROM OrderItems) FROM Order"
    )


def test_an_item_subquery_with_a_next_page_is_paged() -> None:
    # Then activation reads the lines on their own rather than provision a part of them.
    page = {"totalSize": 250, "done": False, "nextRecordsUrl": "/x", "records": []}
    assert _items_paged({"OrderItems": page})
    assert not _items_paged({"OrderItems": {**page, "done": True}})
    assert not _items_paged({"OrderItems": None})
