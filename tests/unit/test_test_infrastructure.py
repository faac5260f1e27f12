"""Choosing the tests' Kafka and PostgreSQL: what can be checked without Docker.

Starting the containers themselves needs a Docker engine, which the development
machines do not have; these tests cover the choice, that the default path never loads
testcontainers, and that the containers' broker is configured like deploy/local's.
"""

from __future__ import annotations

import subprocess
import sys

import pytest

from tests import infrastructure
from tests.conftest import ROOT


def test_without_the_variable_the_tests_use_deploy_local() -> None:
    assert infrastructure.chosen({}) == "local"
    assert infrastructure.chosen({infrastructure.VARIABLE: ""}) == "local"
    assert infrastructure.chosen({infrastructure.VARIABLE: "local"}) == "local"


def test_containers_are_chosen_by_the_variable() -> None:
    assert infrastructure.chosen({infrastructure.VARIABLE: "containers"}) == "containers"


def test_a_misspelt_choice_is_refused_with_the_choices_named() -> None:
    with pytest.raises(pytest.UsageError) as refused:
        infrastructure.chosen({infrastructure.VARIABLE: "container"})
    assert "'container'" in str(refused.value)
    assert "'containers'" in str(refused.value)
    assert "deploy/local" in str(refused.value)


def test_loading_the_fixtures_imports_neither_testcontainers_nor_docker() -> None:
    # A fresh interpreter: this one may have imported anything already.
    loaded = subprocess.run(
        [sys.executable, "-c", "import sys, tests.conftest, tests.infrastructure; "
         "print(sorted({m.split('.')[0] for m in sys.modules} & {'testcontainers', 'docker'}))"],
        cwd=ROOT, capture_output=True, text=True, check=True)
    assert loaded.stdout.strip() == "[]"


def test_the_containers_broker_is_configured_like_deploy_local() -> None:
    properties = dict(
        line.split("=", 1) for line in (ROOT / "deploy/kafka/server.properties").read_text().splitlines()
        if line.strip() and not line.startswith("#"))
    for name, value in infrastructure.KAFKA_BROKER_ENV.items():
        key = name.removeprefix("KAFKA_").lower().replace("_", ".")
        assert properties.get(key) == value, f"{name}={value}, server.properties: {key}={properties.get(key)}"
