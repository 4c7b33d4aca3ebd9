"""The checks the emulated ODP applies to events, profiles, objects and schema bodies (docs/api-contract.md
§5).

Each check returns a list of problems (``invalids`` entries) instead of raising, so a request hears about
every problem at once.
"""

from __future__ import annotations

import re
from typing import Any

from airflow_provider_optimizely.emulator._request_body import parse_iso_datetime

FIELD_TYPES = ("string", "number", "boolean", "timestamp")
# Names of object types and fields: lower-case, as ODP's own (customers, first_name, ...).
NAME_PATTERN = re.compile(r"^[a-z][a-z0-9_]{0,63}$")
EVENT_KEYS = frozenset({"type", "action", "identifiers", "data"})
PROFILE_KEYS = frozenset({"identifiers", "attributes"})
OBJECT_KEYS = frozenset({"object_id", "fields"})
SCHEMA_OBJECT_KEYS = frozenset({"display_name", "description"})
SCHEMA_FIELD_KEYS = frozenset({"name", "display_name", "type", "description"})
_EMAIL = re.compile(r"^[^@\s]+@[^@\s]+$")


def value_problem(field_type: str, value: Any) -> str | None:
    """Why ``value`` can't be stored in a field of ``field_type``, or None when it can."""
    if field_type == "string":
        ok = isinstance(value, str)
    elif field_type == "number":
        ok = isinstance(value, (int, float)) and not isinstance(value, bool)
    elif field_type == "boolean":
        ok = isinstance(value, bool)
    else:  # timestamp: ISO 8601 text or Unix seconds
        ok = parse_iso_datetime(value) is not None or (
            isinstance(value, (int, float)) and not isinstance(value, bool)
        )
    return None if ok else f"expected a {field_type}, got {type(value).__name__}"


def _unknown_keys(item: dict[str, Any], allowed: frozenset[str]) -> list[str]:
    return sorted(set(item) - allowed)


def _identifier_problems(identifiers: Any, *, known: dict[str, Any] | None) -> list[tuple[str, str]]:
    """(field, reason) pairs; ``known`` limits the names to fields of ``customers`` when given."""
    if not isinstance(identifiers, dict) or not identifiers:
        return [("identifiers", "must be an object with at least one identifier")]
    problems = []
    for name, value in identifiers.items():
        if known is not None and name not in known:
            problems.append((name, "unknown identifier: not a field of the customers object"))
        elif not isinstance(value, str) or not value:
            problems.append((name, "identifier values must be non-empty strings"))
        elif name == "email" and not _EMAIL.match(value):
            problems.append((name, "not an email address"))
    return problems


def event_invalids(index: int, event: Any) -> list[dict[str, Any]]:
    def invalid(message: str) -> dict[str, Any]:
        return {"event": index, "message": message}

    if not isinstance(event, dict):
        return [invalid("an event must be a JSON object")]
    out = [invalid(f"unknown key '{key}'") for key in _unknown_keys(event, EVENT_KEYS)]
    if not isinstance(event.get("type"), str) or not event.get("type"):
        out.append(invalid("'type' is required and must be a non-empty string"))
    if not isinstance(event.get("action"), str) or not event.get("action"):
        out.append(invalid("'action' is required and must be a non-empty string"))
    if "data" in event and not isinstance(event["data"], dict):
        out.append(invalid("'data' must be an object"))
    out += [
        invalid(f"{field}: {reason}")
        for field, reason in _identifier_problems(event.get("identifiers"), known=None)
    ]
    return out


def fields_invalids(values: Any, fields: dict[str, dict[str, Any]], *, where: str) -> list[tuple[str, str]]:
    """(field, reason) pairs for values written to fields of one schema object; null clears a field."""
    if not isinstance(values, dict):
        return [(where, "must be an object")]
    problems = []
    for name, value in values.items():
        if name not in fields:
            problems.append((name, "unknown field: create it with POST /schema/objects/{type}/fields first"))
        elif value is not None and (problem := value_problem(fields[name]["type"], value)):
            problems.append((name, problem))
    return problems


def profile_invalids(
    index: int, profile: Any, customer_fields: dict[str, dict[str, Any]]
) -> list[dict[str, Any]]:
    def invalid(field: str, reason: str) -> dict[str, Any]:
        return {"profile": index, "field": field, "reason": reason}

    if not isinstance(profile, dict):
        return [invalid("profile", "a profile must be a JSON object")]
    out = [invalid(key, "unknown key") for key in _unknown_keys(profile, PROFILE_KEYS)]
    out += [invalid(f, r) for f, r in _identifier_problems(profile.get("identifiers"), known=customer_fields)]
    out += [
        invalid(f, r)
        for f, r in fields_invalids(profile.get("attributes", {}), customer_fields, where="attributes")
    ]
    return out


def object_invalids(index: int, item: Any, fields: dict[str, dict[str, Any]]) -> list[dict[str, Any]]:
    def invalid(field: str, reason: str) -> dict[str, Any]:
        return {"object": index, "field": field, "reason": reason}

    if not isinstance(item, dict):
        return [invalid("object", "an object must be a JSON object")]
    out = [invalid(key, "unknown key") for key in _unknown_keys(item, OBJECT_KEYS)]
    if not isinstance(item.get("object_id"), str) or not item.get("object_id"):
        out.append(invalid("object_id", "required, a non-empty string"))
    out += [invalid(f, r) for f, r in fields_invalids(item.get("fields", {}), fields, where="fields")]
    return out


def schema_object_invalids(object_type: str, body: Any) -> list[dict[str, Any]]:
    if not isinstance(body, dict):
        return [{"field": "body", "reason": "must be a JSON object"}]
    out = [{"field": key, "reason": "unknown key"} for key in _unknown_keys(body, SCHEMA_OBJECT_KEYS)]
    if not NAME_PATTERN.match(object_type):
        out.append({"field": "object_type", "reason": f"must match {NAME_PATTERN.pattern}"})
    if not isinstance(body.get("display_name"), str) or not body.get("display_name"):
        out.append({"field": "display_name", "reason": "required, a non-empty string"})
    if "description" in body and not isinstance(body["description"], str):
        out.append({"field": "description", "reason": "must be a string"})
    return out


def schema_field_invalids(body: Any) -> list[dict[str, Any]]:
    if not isinstance(body, dict):
        return [{"field": "body", "reason": "must be a JSON object"}]
    out = [{"field": key, "reason": "unknown key"} for key in _unknown_keys(body, SCHEMA_FIELD_KEYS)]
    if not isinstance(body.get("name"), str) or not NAME_PATTERN.match(body["name"]):
        out.append({"field": "name", "reason": f"required, must match {NAME_PATTERN.pattern}"})
    if not isinstance(body.get("display_name"), str) or not body.get("display_name"):
        out.append({"field": "display_name", "reason": "required, a non-empty string"})
    if body.get("type") not in FIELD_TYPES:
        out.append({"field": "type", "reason": f"required, one of {', '.join(FIELD_TYPES)}"})
    if "description" in body and not isinstance(body["description"], str):
        out.append({"field": "description", "reason": "must be a string"})
    return out
