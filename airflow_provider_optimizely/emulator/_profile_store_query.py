"""``$filter`` and ``$orderBy`` of the emulated Profile Store query (docs/api-contract.md §6), OData style.

Supported: comparisons ``eq ne gt ge lt le`` on a property path (``Info.Email`` or ``Info/Email``),
combined with ``and``, ``or``, ``not`` and parentheses (operators in any case). Literals: ``'text'``
(``''`` escapes a quote), numbers, ``true``, ``false``, ``null``, or a bare word read as text (the vendor's
own example is ``EventType eq home``). On a list property (``DeviceIds``) a comparison holds when it holds
for one element. Date-time text is compared as date-times. A malformed expression raises ``ValueError``.
"""

from __future__ import annotations

import functools
import re
from collections.abc import Callable
from typing import Any

from airflow_provider_optimizely.emulator._request_body import parse_iso_datetime

Predicate = Callable[[dict[str, Any]], bool]
_TOKEN = re.compile(r"\s*(?:(\()|(\))|('(?:[^']|'')*')|([^\s()']+))")
_COMPARISONS = {"eq", "ne", "gt", "ge", "lt", "le"}
_MISSING = object()


def _tokens(text: str) -> list[str]:
    tokens, pos = [], 0
    text = text.strip()
    while pos < len(text):
        match = _TOKEN.match(text, pos)
        if not match or match.end() == pos:
            raise ValueError(f"cannot read $filter at position {pos}")
        tokens.append(match.group(0).strip())
        pos = match.end()
    return tokens


def _literal(token: str) -> Any:
    if token.startswith("'"):
        return token[1:-1].replace("''", "'")
    lowered = token.lower()
    if lowered in ("true", "false"):
        return lowered == "true"
    if lowered == "null":
        return None
    try:
        return int(token)
    except ValueError:
        pass
    try:
        return float(token)
    except ValueError:
        return token


def lookup(item: dict[str, Any], path: str) -> Any:
    value: Any = item
    for part in re.split(r"[./]", path):
        if not isinstance(value, dict) or part not in value:
            return _MISSING
        value = value[part]
    return value


def _comparable(a: Any, b: Any) -> tuple[Any, Any] | None:
    if isinstance(a, bool) or isinstance(b, bool):
        return (a, b) if isinstance(a, bool) and isinstance(b, bool) else None
    if isinstance(a, (int, float)) and isinstance(b, (int, float)):
        return a, b
    if isinstance(a, str) and isinstance(b, str):
        da, db = parse_iso_datetime(a), parse_iso_datetime(b)
        return (da, db) if da and db else (a, b)
    return None


def _compare(op: str, value: Any, literal: Any) -> bool:
    if isinstance(value, list):
        return any(_compare(op, element, literal) for element in value)
    if value is _MISSING:
        value = None
    if op in ("eq", "ne"):
        pair = _comparable(value, literal)
        equal = pair[0] == pair[1] if pair else value is None and literal is None
        return equal if op == "eq" else not equal
    pair = _comparable(value, literal)
    if pair is None:
        return False
    a, b = pair
    return {"gt": a > b, "ge": a >= b, "lt": a < b, "le": a <= b}[op]


class _Parser:
    def __init__(self, tokens: list[str]) -> None:
        self.tokens = tokens
        self.pos = 0

    def peek(self) -> str | None:
        return self.tokens[self.pos] if self.pos < len(self.tokens) else None

    def take(self) -> str:
        token = self.peek()
        if token is None:
            raise ValueError("$filter ends too early")
        self.pos += 1
        return token

    def expression(self) -> Predicate:
        left = self.conjunction()
        while (self.peek() or "").lower() == "or":
            self.take()
            right = self.conjunction()
            left = functools.partial(lambda a, b, item: a(item) or b(item), left, right)
        return left

    def conjunction(self) -> Predicate:
        left = self.negation()
        while (self.peek() or "").lower() == "and":
            self.take()
            right = self.negation()
            left = functools.partial(lambda a, b, item: a(item) and b(item), left, right)
        return left

    def negation(self) -> Predicate:
        if (self.peek() or "").lower() == "not":
            self.take()
            inner = self.negation()
            return lambda item: not inner(item)
        if self.peek() == "(":
            self.take()
            inner = self.expression()
            if self.take() != ")":
                raise ValueError("$filter: ')' expected")
            return inner
        path, op, literal = self.take(), self.take().lower(), _literal(self.take())
        if op not in _COMPARISONS or path.startswith("'"):
            raise ValueError(f"$filter: expected '<property> <eq|ne|gt|ge|lt|le> <value>', got '{path} {op}'")
        return lambda item: _compare(op, lookup(item, path), literal)


def parse_filter(text: str) -> Predicate:
    parser = _Parser(_tokens(text))
    predicate = parser.expression()
    if parser.peek() is not None:
        raise ValueError(f"$filter: unexpected '{parser.peek()}'")
    return predicate


def _rank(value: Any) -> tuple[int, Any]:
    """A sort key that never compares values of different kinds: missing/null first, then by kind."""
    if value is _MISSING or value is None:
        return (0, 0)
    if isinstance(value, bool):
        return (1, value)
    if isinstance(value, (int, float)):
        return (2, value)
    if isinstance(value, str):
        moment = parse_iso_datetime(value)
        return (3, moment) if moment else (4, value)
    return (5, str(value))


def sort_items(items: list[dict[str, Any]], order_by: str) -> list[dict[str, Any]]:
    """Sort by ``Prop [asc|desc], Prop2 ...``; raises ``ValueError`` on a malformed clause."""
    keys = []
    for clause in order_by.split(","):
        parts = clause.split()
        if not parts or len(parts) > 2 or (len(parts) == 2 and parts[1].lower() not in ("asc", "desc")):
            raise ValueError(f"$orderBy: cannot read '{clause.strip()}'")
        keys.append((parts[0], len(parts) == 2 and parts[1].lower() == "desc"))
    # Stable sorts from the last key to the first give a multi-key order with per-key direction.
    for path, descending in reversed(keys):
        items = sorted(items, key=lambda item, p=path: _rank(lookup(item, p)), reverse=descending)  # type: ignore[misc]
    return items
