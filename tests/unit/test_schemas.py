from __future__ import annotations

import pytest

from contracts.schemas import MODELS, SCHEMA_DIR, render


@pytest.mark.parametrize("filename", sorted(MODELS))
def test_checked_in_json_schema_is_current(filename: str) -> None:
    path = SCHEMA_DIR / filename
    assert path.exists(), f"{path} is missing: run `make schemas`"
    assert path.read_text() == render(filename), f"{path} is stale: run `make schemas`"
