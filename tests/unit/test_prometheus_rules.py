"""deploy/prometheus: the scrape configuration and the alert rules pass `promtool`, and
the rules' own unit tests (alerts_test.yml) pass. Needs Debian's `prometheus` package
(`make test` installs it: deploy/local/prometheus-tools); fails, never skips, under CI."""

from __future__ import annotations

import re
import shutil
import subprocess

import pytest

from services.shared.metrics import REGISTRY
from services.shared.settings import DEFAULT_HTTP_PORTS
from tests.conftest import ROOT, unavailable

PROMETHEUS = ROOT / "deploy" / "prometheus"


@pytest.fixture(scope="module")
def promtool() -> str:
    found = shutil.which("promtool")
    if found is None:
        unavailable("promtool is not installed: run deploy/local/prometheus-tools "
                    "(Debian's prometheus package)")
    return found


def run(promtool: str, *args: str) -> str:
    result = subprocess.run([promtool, *args], cwd=PROMETHEUS, capture_output=True, text=True,
                            timeout=60)
    assert result.returncode == 0, f"promtool {' '.join(args)}:\n{result.stdout}{result.stderr}"
    return result.stdout


def test_the_scrape_configuration_is_valid(promtool: str) -> None:
    assert "SUCCESS" in run(promtool, "check", "config", "prometheus.yml")


def test_the_alert_rules_are_valid(promtool: str) -> None:
    assert "SUCCESS: 7 rules found" in run(promtool, "check", "rules", "alerts.yml")


def test_the_alert_rules_pass_their_unit_tests(promtool: str) -> None:
    assert "SUCCESS" in run(promtool, "test", "rules", "alerts_test.yml")


def test_prometheus_scrapes_each_service_at_its_default_port() -> None:
    config = (PROMETHEUS / "prometheus.yml").read_text()
    for service, port in DEFAULT_HTTP_PORTS.items():
        assert f"job_name: sendhub-{service}" in config
        assert f'targets: ["127.0.0.1:{port}"]' in config


def test_the_rules_name_only_metrics_the_services_export() -> None:
    named = set(re.findall(r"sendhub_[a-z_]+", (PROMETHEUS / "alerts.yml").read_text()))
    exported = {name for family in REGISTRY.collect()
                for name in (family.name, f"{family.name}_total")}
    assert "sendhub_dead_letters_total" in named and named <= exported
