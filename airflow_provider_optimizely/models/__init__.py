"""Pydantic bodies of the four APIs, one module per API. Resources only: hot-path records stay plain dicts."""

from __future__ import annotations
