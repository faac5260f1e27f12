"""Browser-test support for the web application: the accessibility check (axe-core,
WCAG 2.2 A and AA) with a screenshot that every page must pass.
"""

from __future__ import annotations

import json
import re
from collections.abc import Mapping
from typing import Any

from axe_playwright_python.sync_playwright import Axe  # type: ignore[import-untyped]
from playwright.sync_api import Page

from tests.conftest import ARTIFACTS

AXE_TAGS = ("wcag2a", "wcag2aa", "wcag21a", "wcag21aa", "wcag22aa")
_NODES_SHOWN = 3


def _violation(violation: Mapping[str, Any]) -> str:
    nodes = violation["nodes"]
    targets = ", ".join(" >> ".join(map(str, n["target"])) for n in nodes[:_NODES_SHOWN])
    more = f" and {len(nodes) - _NODES_SHOWN} more" if len(nodes) > _NODES_SHOWN else ""
    return (f"- {violation['id']} ({violation['impact']}): {violation['help']}\n"
            f"    {len(nodes)} node(s): {targets}{more}\n    {violation['helpUrl']}")


def check_page(page: Page, name: str) -> None:
    """Keep a full-page screenshot, test-artifacts/web-<name>.png, and fail on any WCAG
    2.2 level A or AA violation axe-core finds (its results in web-<name>.axe.json).

    Only `violations` fail: axe's `incomplete` results (such as contrast over an image)
    need a person to look and are in the JSON."""
    if not re.fullmatch(r"[A-Za-z0-9][A-Za-z0-9._-]*", name):
        raise ValueError(f"page name {name!r} is not usable in a file name")
    ARTIFACTS.mkdir(exist_ok=True)
    page.screenshot(path=ARTIFACTS / f"web-{name}.png", full_page=True)
    results = Axe().run(page, options={"runOnly": {"type": "tag", "values": list(AXE_TAGS)},
                                       "resultTypes": ["violations"]})
    response: dict[str, Any] = results.response
    (ARTIFACTS / f"web-{name}.axe.json").write_text(json.dumps(response, indent=2))
    violations: list[dict[str, Any]] = response["violations"]
    if violations:
        raise AssertionError(
            f"{page.url} ({name}) has {len(violations)} WCAG 2.2 A/AA violation(s) by axe-core "
            f"{response.get('testEngine', {}).get('version', '?')}:\n"
            + "\n".join(_violation(v) for v in violations))
