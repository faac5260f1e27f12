"""Test data builders (temporary home; merged with the factories moved out of conftest)."""

from __future__ import annotations

from tests.conftest import random_upn, school_event

__all__ = ["random_upn", "school_event"]
