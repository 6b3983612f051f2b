"""A parser for the small SOQL subset the pipeline sends.

Grammar (keywords case-insensitive):

    SELECT item [, item ...] FROM Object
      [WHERE condition [AND condition ...]]
      [ORDER BY path [ASC|DESC] [NULLS FIRST|LAST] [, ...]]
      [LIMIT n] [OFFSET n]

An item is a field path or a child subquery, `(SELECT path [, path ...] FROM ChildRelation)`
(no filters inside; the order's items, say, come back nested under the relationship's name).
A condition is `path op literal` with op one of = != <> < <= > >= LIKE, or
`path [NOT] IN (literal, ...)`. Literals are 'quoted strings' with backslash escapes (as
`simple_salesforce.format_soql` writes them), numbers, true/false/null, and unquoted dates and
datetimes. This module only parses; `query.py` resolves names against the schema and runs it.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from typing import Any, NoReturn

_TOKEN = re.compile(
    r"""
    (?P<ws>\s+)
    |(?P<string>'(?:[^'\\]|\\.)*')
    |(?P<datetime>\d{4}-\d{2}-\d{2}T\d{2}:\d{2}:\d{2}(?:\.\d+)?(?:Z|[+-]\d{2}:?\d{2}))
    |(?P<date>\d{4}-\d{2}-\d{2})
    |(?P<number>-?\d+(?:\.\d+)?)
    |(?P<name>[A-Za-z_][A-Za-z0-9_]*(?:\.[A-Za-z_][A-Za-z0-9_]*)*)
    |(?P<op>!=|<>|<=|>=|=|<|>)
    |(?P<punct>[,()])
    """,
    re.VERBOSE | re.DOTALL,
)
_ESCAPES = {"n": "\n", "r": "\r", "t": "\t", "b": "\b", "f": "\f", '"': '"', "'": "'", "\\": "\\"}
_ESCAPES.update({"%": "\\%", "_": "\\_"})  # LIKE escapes stay escaped for the matcher
_KEYWORDS = {
    "select", "from", "where", "and", "or", "not", "in", "order", "by", "asc", "desc",
    "nulls", "first", "last", "limit", "offset", "null", "true", "false", "like",
}  # fmt: skip
COMPARISONS = ("=", "!=", "<>", "<", "<=", ">", ">=", "like")


class SoqlError(ValueError):
    """Raised for a query this parser cannot read (Salesforce's MALFORMED_QUERY)."""


@dataclass(frozen=True)
class Literal:
    """A constant in a condition: kind is string, number, boolean, null, date or datetime."""

    kind: str
    value: Any


@dataclass(frozen=True)
class Condition:
    path: str
    op: str  # one of COMPARISONS, "in" or "not in"
    values: tuple[Literal, ...]


@dataclass(frozen=True)
class Ordering:
    path: str
    descending: bool
    nulls_last: bool


@dataclass(frozen=True)
class Subquery:
    """`(SELECT fields FROM relationship)` in a select list: a parent's child records."""

    fields: tuple[str, ...]
    relationship: str


@dataclass(frozen=True)
class Query:
    fields: tuple[str, ...]
    sobject: str
    where: tuple[Condition, ...] = ()
    order_by: tuple[Ordering, ...] = ()
    limit: int | None = None
    offset: int | None = None
    subqueries: tuple[Subquery, ...] = ()


@dataclass(frozen=True)
class _Token:
    kind: str
    text: str
    offset: int

    @property
    def keyword(self) -> str | None:
        lowered = self.text.lower()
        return lowered if self.kind == "name" and lowered in _KEYWORDS else None


def parse(text: str) -> Query:
    """Parse one SELECT statement, or raise SoqlError."""
    return _Parser(_tokenize(text)).query()


def _tokenize(text: str) -> list[_Token]:
    tokens: list[_Token] = []
    pos = 0
    while pos < len(text):
        match = _TOKEN.match(text, pos)
        if match is None:
            raise SoqlError(f"unexpected token: {text[pos : pos + 10]!r} at column {pos + 1}")
        kind = match.lastgroup or ""
        if kind != "ws":
            tokens.append(_Token(kind, match.group(), pos))
        pos = match.end()
    return tokens


def _unquote(literal: str) -> str:
    out: list[str] = []
    chars = iter(literal[1:-1])
    for ch in chars:
        if ch != "\\":
            out.append(ch)
            continue
        escaped = next(chars, "")
        if escaped not in _ESCAPES:
            raise SoqlError(f"invalid escape sequence: \\{escaped}")
        out.append(_ESCAPES[escaped])
    return "".join(out)


class _Parser:
    """Recursive descent over the token list; one method per clause."""

    def __init__(self, tokens: list[_Token]) -> None:
        self.tokens = tokens
        self.pos = 0

    def query(self) -> Query:
        self._keyword("select")
        fields, subqueries = self._items()
        self._keyword("from")
        sobject = self._name()
        where = self._where() if self._at_keyword("where") else ()
        order_by = self._order_by() if self._at_keyword("order") else ()
        limit = self._count("limit") if self._at_keyword("limit") else None
        offset = self._count("offset") if self._at_keyword("offset") else None
        if self._peek() is not None:
            self._fail()
        return Query(fields, sobject, where, order_by, limit, offset, subqueries)

    def _items(self) -> tuple[tuple[str, ...], tuple[Subquery, ...]]:
        fields: list[str] = []
        subqueries: list[Subquery] = []
        while True:
            if self._at_punct("("):
                subqueries.append(self._subquery())
            else:
                fields.append(self._name())
            if not self._at_punct(","):
                return tuple(fields), tuple(subqueries)
            self.pos += 1

    def _subquery(self) -> Subquery:
        self._punct("(")
        self._keyword("select")
        fields = self._paths()
        self._keyword("from")
        relationship = self._name()
        self._punct(")")
        return Subquery(fields, relationship)

    def _paths(self) -> tuple[str, ...]:
        paths = [self._name()]
        while self._at_punct(","):
            self.pos += 1
            paths.append(self._name())
        return tuple(paths)

    def _where(self) -> tuple[Condition, ...]:
        self._keyword("where")
        conditions = [self._condition()]
        while self._at_keyword("and"):
            self.pos += 1
            conditions.append(self._condition())
        if self._at_keyword("or"):
            raise SoqlError("OR is not supported by the sandbox's SOQL")
        return tuple(conditions)

    def _condition(self) -> Condition:
        path = self._name()
        if self._at_keyword("not"):
            self.pos += 1
            self._keyword("in")
            return Condition(path, "not in", self._literal_list())
        if self._at_keyword("in"):
            self.pos += 1
            return Condition(path, "in", self._literal_list())
        token = self._next()
        op = token.text if token.kind == "op" else token.keyword
        if op not in COMPARISONS:
            self._fail(self.pos - 1)
        return Condition(path, op or "", (self._literal(),))

    def _literal_list(self) -> tuple[Literal, ...]:
        self._punct("(")
        values = [self._literal()]
        while self._at_punct(","):
            self.pos += 1
            values.append(self._literal())
        self._punct(")")
        return tuple(values)

    def _literal(self) -> Literal:
        token = self._next()
        if token.kind == "string":
            return Literal("string", _unquote(token.text))
        if token.kind == "number":
            number = float(token.text)
            return Literal("number", int(number) if number.is_integer() else number)
        if token.kind in ("date", "datetime"):
            return Literal(token.kind, token.text)
        keyword = token.keyword
        if keyword == "null":
            return Literal("null", None)
        if keyword in ("true", "false"):
            return Literal("boolean", keyword == "true")
        self._fail(self.pos - 1)

    def _order_by(self) -> tuple[Ordering, ...]:
        self._keyword("order")
        self._keyword("by")
        orderings = [self._ordering()]
        while self._at_punct(","):
            self.pos += 1
            orderings.append(self._ordering())
        return tuple(orderings)

    def _ordering(self) -> Ordering:
        path = self._name()
        descending = False
        if self._at_keyword("asc") or self._at_keyword("desc"):
            descending = self._next().keyword == "desc"
        nulls_last = descending  # Salesforce's default: nulls first ascending, last descending
        if self._at_keyword("nulls"):
            self.pos += 1
            token = self._next()
            if token.keyword not in ("first", "last"):
                self._fail(self.pos - 1)
            nulls_last = token.keyword == "last"
        return Ordering(path, descending, nulls_last)

    def _count(self, keyword: str) -> int:
        self._keyword(keyword)
        token = self._next()
        if token.kind != "number" or not token.text.isdigit():
            self._fail(self.pos - 1)
        return int(token.text)

    # --- token helpers ---------------------------------------------------------------------

    def _peek(self) -> _Token | None:
        return self.tokens[self.pos] if self.pos < len(self.tokens) else None

    def _next(self) -> _Token:
        token = self._peek()
        if token is None:
            raise SoqlError("unexpected end of query")
        self.pos += 1
        return token

    def _at_keyword(self, keyword: str) -> bool:
        token = self._peek()
        return token is not None and token.keyword == keyword

    def _at_punct(self, punct: str) -> bool:
        token = self._peek()
        return token is not None and token.kind == "punct" and token.text == punct

    def _keyword(self, keyword: str) -> None:
        if not self._at_keyword(keyword):
            self._fail()
        self.pos += 1

    def _punct(self, punct: str) -> None:
        if not self._at_punct(punct):
            self._fail()
        self.pos += 1

    def _name(self) -> str:
        token = self._next()
        if token.kind != "name" or token.keyword in ("select", "from", "where"):
            self._fail(self.pos - 1)
        return token.text

    def _fail(self, index: int | None = None) -> NoReturn:
        at = self.pos if index is None else index
        if at >= len(self.tokens):
            raise SoqlError("unexpected end of query")
        token = self.tokens[at]
        raise SoqlError(f"unexpected token: '{token.text}' at column {token.offset + 1}")
