"""Haystack 2 filters (``{"field": "meta.x", "operator": ">", "value": 1}``, ``{"operator": "AND",
"conditions": [...]}``) as Tidepool filters (docs/FILTERS.md). Fields map to attributes by name:
``meta.x`` is the attribute ``meta.x``, ``content`` the document's text. A malformed filter is a
``FilterError`` before anything is sent."""
from __future__ import annotations

from typing import Any, Dict, List, Union

from haystack.errors import FilterError

# A converted filter: a Tidepool filter, or True (every document) / False (none), which Tidepool's
# syntax has no literal for and which simplify away inside AND, OR and NOT.
Converted = Union[Dict[str, Any], bool]

_COMPARISONS = {"==": "eq", "!=": "ne", ">": "gt", ">=": "gte", "<": "lt", "<=": "lte", "in": "in",
                "not in": "notIn"}
_ORDERING = {">", ">=", "<", "<="}


def convert_filters(filters: Dict[str, Any]) -> Converted:
    """The Tidepool filter for a Haystack filter (a comparison or a logical condition); True when
    every document matches, False when none can."""
    if not isinstance(filters, dict):
        raise FilterError(f"a filter is a dict, not {type(filters).__name__}")
    if "field" in filters:
        return _comparison(filters)
    return _logical(filters)


def _and(parts: List[Converted]) -> Converted:
    if any(p is False for p in parts):
        return False
    rest = [p for p in parts if p is not True]
    return True if not rest else rest[0] if len(rest) == 1 else {"and": rest}


def _or(parts: List[Converted]) -> Converted:
    if any(p is True for p in parts):
        return True
    rest = [p for p in parts if p is not False]
    return False if not rest else rest[0] if len(rest) == 1 else {"or": rest}


def _logical(f: Dict[str, Any]) -> Converted:
    if "operator" not in f:
        raise FilterError(f"a logical filter needs 'operator' (AND, OR, NOT): {f}")
    if "conditions" not in f:
        raise FilterError(f"a logical filter needs 'conditions': {f}")
    op, conditions = f["operator"], f["conditions"]
    if not isinstance(conditions, list):
        raise FilterError(f"'conditions' must be a list: {f}")
    parts = [convert_filters(c) for c in conditions]
    if op == "AND":
        return _and(parts)
    if op == "OR":
        return _or(parts)
    if op == "NOT":
        inner = _and(parts)
        return (not inner) if isinstance(inner, bool) else {"not": inner}
    raise FilterError(f"unknown logical operator {op!r} (AND, OR, NOT)")


def _comparison(f: Dict[str, Any]) -> Converted:
    for key in ("operator", "value"):
        if key not in f:
            raise FilterError(f"a comparison needs 'field', 'operator' and 'value': {f}")
    field, op, value = f["field"], f["operator"], f["value"]
    if op not in _COMPARISONS:
        raise FilterError(f"unknown comparison operator {op!r} ({', '.join(_COMPARISONS)})")
    if field == "id":
        raise FilterError("filtering by 'id' is not supported yet; use get_documents_by_id")
    if op in ("in", "not in") and not isinstance(value, list):
        raise FilterError(f"'{op}' takes a list of values, not {type(value).__name__}")
    if op in _ORDERING:
        if isinstance(value, (list, dict)):
            raise FilterError(f"'{op}' compares with one value, not a {type(value).__name__}")
        if value is None:
            return False  # nothing is ordered against None: no document matches
    return {field: {_COMPARISONS[op]: value}}
