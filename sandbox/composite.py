"""The Composite resource: `POST /services/data/vNN.N/composite`, several REST calls in one.

Body `{"allOrNone"?, "collateSubrequests"?, "compositeRequest": [{"method", "url",
"referenceId", "body"?, "httpHeaders"?}, ...]}`, at most 25 subrequests of which at most 5
are queries. Salesforce counts the whole call as one API call. The answer is always 200
`{"compositeResponse": [{"body", "httpHeaders", "httpStatusCode", "referenceId"}, ...]}`, one
result per subrequest in the order sent; a subrequest's error is its REST error list. With
`allOrNone` true the first failure rolls back every write made so far and stops the rest:
each other subrequest answers 400 `PROCESSING_HALTED`. With it false every subrequest runs.
A body that breaks these rules is refused whole (400, an error list) before anything runs.

Subrequests run in the order sent (`collateSubrequests` is accepted and changes nothing).
The `@{referenceId.field}` notation is not resolved: a body using it is refused, not run with
the reference left in. This module parses and sequences; `salesforce.py` routes the
subrequests and runs them on the REST operations.
"""

from __future__ import annotations

import json
import re
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from .errors import SalesforceApiError
from .rest import Journal

MAX_SUBREQUESTS = 25
MAX_QUERIES = 5
METHODS = ("POST", "PUT", "PATCH", "GET", "DELETE")
_TOP_FIELDS = {"allOrNone", "collateSubrequests", "compositeRequest"}
_SUBREQUEST_FIELDS = {"method", "url", "referenceId", "body", "httpHeaders"}
#: Subrequests take these from the top-level request; naming them fails the whole call.
_INHERITED_HEADERS = {"accept", "authorization", "content-type"}
_REFERENCE_ID = re.compile(r"[A-Za-z0-9_]+")
HALTED = "The transaction was rolled back since another operation in the same transaction failed."


@dataclass(frozen=True)
class Route:
    """What a subrequest's method and url name: a REST operation by its fault-action name
    (`get`, `update`, `create`, `query`) with the url's path arguments and query string, or
    the error a call to that url would get (404, 405)."""

    action: str | None
    args: dict[str, str] = field(default_factory=dict)
    params: dict[str, str] = field(default_factory=dict)
    error: SalesforceApiError | None = None


@dataclass(frozen=True)
class Subrequest:
    method: str
    url: str
    reference_id: str
    body: Any
    route: Route


@dataclass(frozen=True)
class Composite:
    all_or_none: bool
    subrequests: tuple[Subrequest, ...]


@dataclass(frozen=True)
class Result:
    """One subrequest's answer."""

    status: int
    body: Any = None
    headers: dict[str, str] = field(default_factory=dict)


def parse(body: object, resolve: Callable[[str, str], Route]) -> Composite:
    """Check a composite body and route its subrequests (`resolve(method, url)`), or raise
    the 400 Salesforce answers for the whole call."""
    if not isinstance(body, dict):
        raise _malformed("The composite request body must be a JSON object")
    _no_unknown_fields(body, _TOP_FIELDS)
    all_or_none = _flag(body, "allOrNone")
    _flag(body, "collateSubrequests")
    items = body.get("compositeRequest")
    if not isinstance(items, list):
        raise _malformed("'compositeRequest' is a required field.")
    if not items:
        raise _malformed("'compositeRequest' must have at least one subrequest.")
    if len(items) > MAX_SUBREQUESTS:
        raise _limit(f"A composite request may have at most {MAX_SUBREQUESTS} subrequests.")
    subrequests = tuple(_subrequest(item, resolve) for item in items)
    references = [s.reference_id for s in subrequests]
    duplicate = next((r for r in references if references.count(r) > 1), None)
    if duplicate is not None:
        raise _malformed(f"Duplicate referenceId: {duplicate}")
    if sum(s.route.action == "query" for s in subrequests) > MAX_QUERIES:
        raise _limit(f"A composite request may have at most {MAX_QUERIES} query subrequests.")
    return Composite(all_or_none, subrequests)


def run(
    composite: Composite,
    execute: Callable[[Subrequest, Journal], Result],
    journal: Journal,
) -> dict[str, Any]:
    """Run the subrequests in order (`execute` answers one, or raises its error) and answer
    the call; with all-or-none, the first failure rolls back and halts the rest. Call with
    the world lock held, so that nobody sees a write that may yet be rolled back."""
    results: list[Result | None] = []
    failed: int | None = None
    try:
        for index, subrequest in enumerate(composite.subrequests):
            if failed is not None and composite.all_or_none:
                results.append(None)
                continue
            try:
                results.append(execute(subrequest, journal))
            except SalesforceApiError as exc:
                results.append(Result(exc.status, exc.body()))
                failed = index if failed is None else failed
    except BaseException:
        journal.roll_back()
        raise
    if failed is not None and composite.all_or_none:
        journal.roll_back()
        results = [r if i == failed else None for i, r in enumerate(results)]
    halted = Result(400, SalesforceApiError(400, "PROCESSING_HALTED", HALTED).body())
    return {
        "compositeResponse": [
            _answer(subrequest, result or halted)
            for subrequest, result in zip(composite.subrequests, results, strict=True)
        ]
    }


def _answer(subrequest: Subrequest, result: Result) -> dict[str, Any]:
    return {
        "body": result.body,
        "httpHeaders": result.headers,
        "httpStatusCode": result.status,
        "referenceId": subrequest.reference_id,
    }


def _subrequest(item: object, resolve: Callable[[str, str], Route]) -> Subrequest:
    if not isinstance(item, dict):
        raise _malformed("Each subrequest must be a JSON object")
    _no_unknown_fields(item, _SUBREQUEST_FIELDS)
    reference = item.get("referenceId")
    if not isinstance(reference, str) or not reference:
        raise _malformed("'referenceId' is a required field.")
    if not _REFERENCE_ID.fullmatch(reference):
        raise _malformed(
            f"Invalid referenceId: {reference!r}: only letters, digits and underscores"
        )
    method = item.get("method")
    if not isinstance(method, str) or not method:
        raise _malformed("'method' is a required field.")
    if method not in METHODS:
        raise _malformed(f"Invalid method {method!r}: one of {', '.join(METHODS)}")
    url = item.get("url")
    if not isinstance(url, str) or not url:
        raise _malformed("'url' is a required field.")
    _check_headers(item.get("httpHeaders"))
    body = item.get("body")
    if "@{" in url or "@{" in json.dumps(body):
        raise SalesforceApiError(
            400,
            "NOT_SUPPORTED",
            "The sandbox does not resolve @{referenceId...} references in composite requests",
        )
    return Subrequest(method, url, reference, body, resolve(method, url))


def _check_headers(headers: object) -> None:
    if headers is None:
        return
    if not isinstance(headers, dict) or not all(
        isinstance(k, str) and isinstance(v, str) for k, v in headers.items()
    ):
        raise _malformed("'httpHeaders' must map header names to strings")
    inherited = sorted(h for h in headers if h.lower() in _INHERITED_HEADERS)
    if inherited:
        raise _malformed(
            f"A subrequest cannot set {', '.join(inherited)}: it is taken from the request"
        )


def _no_unknown_fields(body: dict[str, Any], known: set[str]) -> None:
    unknown = sorted(set(body) - known)
    if unknown:
        raise _malformed(f'Unrecognized field "{unknown[0]}"')


def _flag(body: dict[str, Any], name: str) -> bool:
    value = body.get(name, False)
    if not isinstance(value, bool):
        raise _malformed(f"Cannot deserialize value of type boolean from {value!r} ({name})")
    return value


def _malformed(message: str) -> SalesforceApiError:
    return SalesforceApiError(400, "JSON_PARSER_ERROR", message)


def _limit(message: str) -> SalesforceApiError:
    return SalesforceApiError(400, "LIMIT_EXCEEDED", message)
