"""Faults on demand: a share of error answers, dropped connections and slow answers, per API and route.

A fault spec (JSON through ``PUT /_emulator/faults``, or ``--fault`` on the command line)::

    {"api": "odp", "route": "POST /events",          # route optional: then the whole API
     "error_rate": {"500": 0.1, "503": 0.05, "429": 0.05},
     "drop_rate": 0.02,                                # close the connection without an answer
     "delay_seconds": 0.5, "delay_rate": 1.0,          # answer late (a share of requests, all by default)
     "next": ["503", "drop"],                          # then these outcomes, in order, before the rates
     "retry_after": 1,                                 # Retry-After of the injected 429s and 503s,
                                                       # vendor seconds (DCP's is at least 60)
     "seed": 1}                                        # a seeded draw, so a test is repeatable

DCP's bulk import has a route of its own, ``IMPORT_ROUTE`` (``"IMPORT /upload"``), where one more fault
applies: ``{"api": "dcp", "route": "IMPORT /upload", "row_refusal_rate": 0.01, "seed": 1}`` refuses that
share of the rows of every file processed (``processed`` with ``rows_failed``, each row in ``errors``),
chosen by a seeded hash of the row's customerId, so the same customers are refused on every file: what
DCP does when it refuses rows for reasons of its own (docs/api-contract.md §4.6).

``route`` is ``"METHOD /template"`` relative to the API's prefix, as ``Received`` counts it
(``"POST /customer_profile/{service_id}/{table_id}/{customer_id}"``), or a concrete path
(``"POST /customer_profile/20001/20002/c1"``); a spec for the route wins over one for the whole API.
"""

from __future__ import annotations

import hashlib
import json
import random
import threading
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from pydantic import BaseModel, ConfigDict, Field, field_validator, model_validator

from airflow_provider_optimizely.emulator.common import API_NAMES

FAULT_STATUSES = (429, 500, 502, 503, 504)
#: The route of DCP's bulk import (no HTTP route: the worker that processes uploaded files).
IMPORT_ROUTE = "IMPORT /upload"
ROW_REFUSAL_MESSAGE = "refused by an emulator fault (row_refusal_rate)"


class FaultSpec(BaseModel):
    model_config = ConfigDict(extra="forbid")

    api: str
    route: str | None = None
    error_rate: dict[int, float] = Field(default_factory=dict)
    drop_rate: float = Field(default=0.0, ge=0.0, le=1.0)
    delay_seconds: float = Field(default=0.0, ge=0.0, le=300.0)
    delay_rate: float = Field(default=1.0, ge=0.0, le=1.0)
    next: list[str] = Field(default_factory=list)
    retry_after: int = Field(default=1, ge=1)
    row_refusal_rate: float = Field(default=0.0, ge=0.0, le=1.0)
    seed: int | None = None

    @field_validator("api")
    @classmethod
    def _known_api(cls, api: str) -> str:
        if api not in API_NAMES:
            raise ValueError(f"api must be one of {', '.join(API_NAMES)}")
        return api

    @field_validator("route")
    @classmethod
    def _route_shape(cls, route: str | None) -> str | None:
        if route is None:
            return None
        method, _, path = route.strip().partition(" ")
        if not path.startswith("/"):
            raise ValueError('route looks like "POST /events"')
        return f"{method.upper()} {path.strip()}"

    @field_validator("error_rate")
    @classmethod
    def _statuses(cls, rates: dict[int, float]) -> dict[int, float]:
        for status, rate in rates.items():
            if status not in FAULT_STATUSES:
                raise ValueError(
                    f"error_rate statuses are {', '.join(map(str, FAULT_STATUSES))}, not {status}"
                )
            if not 0.0 <= rate <= 1.0:
                raise ValueError(f"a rate is between 0 and 1, not {rate}")
        return rates

    @field_validator("next")
    @classmethod
    def _outcomes(cls, outcomes: list[str]) -> list[str]:
        allowed = {*map(str, FAULT_STATUSES), "drop", "ok"}
        for outcome in outcomes:
            if outcome not in allowed:
                raise ValueError(f"next holds {', '.join(sorted(allowed))}, not {outcome!r}")
        return outcomes

    @model_validator(mode="after")
    def _rates_fit(self) -> FaultSpec:
        if sum(self.error_rate.values()) + self.drop_rate > 1.0 + 1e-9:
            raise ValueError("error rates and drop_rate add up to more than 1")
        return self

    @property
    def key(self) -> tuple[str, str | None]:
        return (self.api, self.route)


def parse_cli_fault(text: str) -> dict[str, Any]:
    """``api[:route]=spec``: spec is JSON, or ``500=0.1,503=0.05,drop=0.02,delay=0.5,seed=1``."""
    target, sep, spec_text = text.partition("=")
    if not sep:
        raise ValueError(f"a fault looks like odp:POST /events=500=0.1,drop=0.02, not {text!r}")
    api, _, route = target.partition(":")
    spec: dict[str, Any] = {"api": api.strip()}
    if route.strip():
        spec["route"] = route.strip()
    if spec_text.lstrip().startswith("{"):
        spec.update(json.loads(spec_text))
        return spec
    errors: dict[str, float] = {}
    for part in filter(None, (p.strip() for p in spec_text.split(","))):
        name, _, value = part.partition("=")
        if name.isdigit():
            errors[name] = float(value)
        elif name == "drop":
            spec["drop_rate"] = float(value)
        elif name == "delay":
            spec["delay_seconds"] = float(value)
        elif name in ("delay_rate", "seed", "retry_after"):
            spec[name] = float(value) if name == "delay_rate" else int(value)
        else:
            raise ValueError(f"unknown fault setting {name!r} in {text!r}")
    if errors:
        spec["error_rate"] = errors
    return spec


@dataclass(frozen=True)
class Outcome:
    """What to do with one request: wait ``delay`` seconds, then drop it, answer ``status``, or serve it."""

    delay: float = 0.0
    drop: bool = False
    status: int | None = None
    retry_after: int = 1


SERVE = Outcome()


class _ActiveFault:
    def __init__(self, spec: FaultSpec) -> None:
        self.spec = spec
        self.random = random.Random(spec.seed)
        self.queued = list(spec.next)

    def draw(self) -> Outcome:
        spec = self.spec
        delay = spec.delay_seconds if spec.delay_seconds and self.random.random() < spec.delay_rate else 0.0
        if self.queued:
            chosen = self.queued.pop(0)
        else:
            chosen, point, cumulative = "ok", self.random.random(), 0.0
            for status, rate in sorted(spec.error_rate.items()):
                cumulative += rate
                if point < cumulative:
                    chosen = str(status)
                    break
            else:
                if point < cumulative + spec.drop_rate:
                    chosen = "drop"
        if chosen == "drop":
            return Outcome(delay=delay, drop=True)
        if chosen == "ok":
            return Outcome(delay=delay) if delay else SERVE
        return Outcome(delay=delay, status=int(chosen), retry_after=spec.retry_after)


class FaultBoard:
    """The fault specs in force, changeable at run time; thread-safe."""

    def __init__(self, initial: list[dict[str, Any]] | None = None) -> None:
        self._lock = threading.Lock()
        self._initial = [FaultSpec.model_validate(spec) for spec in initial or []]
        self._active: dict[tuple[str, str | None], _ActiveFault] = {}
        self.restore()

    def restore(self) -> None:
        """Back to the specs given at start (the command line's), with fresh random draws."""
        with self._lock:
            self._active = {spec.key: _ActiveFault(spec) for spec in self._initial}

    def clear(self) -> None:
        with self._lock:
            self._active = {}

    def put(self, spec: FaultSpec) -> None:
        """Set the spec for its (api, route), replacing the one there."""
        with self._lock:
            self._active[spec.key] = _ActiveFault(spec)

    def replace_all(self, specs: list[FaultSpec]) -> None:
        with self._lock:
            self._active = {spec.key: _ActiveFault(spec) for spec in specs}

    def specs(self) -> list[dict[str, Any]]:
        with self._lock:
            return [
                active.spec.model_dump() | {"next": list(active.queued)} for active in self._active.values()
            ]

    def active_for(self, api: str) -> bool:
        """Whether any fault is set for ``api`` (the emulator is misbehaving on purpose there)."""
        with self._lock:
            return any(key[0] == api for key in self._active)

    def row_refusal(self, api: str) -> Callable[[str], bool] | None:
        """Whether a row of a bulk-upload file is refused, by its customerId (``IMPORT_ROUTE``'s
        ``row_refusal_rate``); None when no such fault is set."""
        with self._lock:
            active = self._active.get((api, IMPORT_ROUTE))
        if active is None or not active.spec.row_refusal_rate:
            return None
        rate, seed = active.spec.row_refusal_rate, active.spec.seed or 0

        def refused(customer_id: str) -> bool:
            digest = hashlib.sha256(f"{seed}:{customer_id}".encode()).digest()
            return int.from_bytes(digest[:8], "big") < rate * 2**64

        return refused

    def decide(self, api: str, route: str, concrete: str) -> Outcome:
        with self._lock:
            if not self._active:
                return SERVE
            active = (
                self._active.get((api, route))
                or self._active.get((api, concrete))
                or self._active.get((api, None))
            )
            return active.draw() if active else SERVE
