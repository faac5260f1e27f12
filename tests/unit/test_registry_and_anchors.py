"""The settings registry's CSV, and anchors split into parts with stable ids and digests."""

from __future__ import annotations

from datetime import UTC, datetime
from uuid import UUID

import pytest

from services.records.application import AnchorHeads
from services.records.entrypoint import ANCHOR_PART, anchor_messages
from services.transfers.registry import RegistryFileError, parse_registry_csv
from tests.conftest import ROOT


def test_the_sample_registry_parses_into_schools_and_colleges() -> None:
    settings, problems = parse_registry_csv(
        (ROOT / "data/settings-registry-sample.csv").read_text())
    assert problems == [] and len(settings) == 9
    oakfield = next(s for s in settings if s.urn == "131001")
    assert (oakfield.la_code, oakfield.establishment_number, oakfield.belongs_to) == (
        "801", "2001", "Severn Vale Learning Trust")
    college = next(s for s in settings if s.ukprn == "10034567")
    assert college.name == "Northgate College" and college.phase == "16 plus"
    riverside = next(s for s in settings if s.urn == "131002")
    assert riverside.belongs_to == "Bristol, City of"  # no trust: its local authority


def test_bad_rows_are_reported_by_line_and_the_rest_kept() -> None:
    text = ("URN,EstablishmentName,PhaseOfEducation (name),LA (code),UKPRN\n"
            "131001,Oakfield,Primary,801,\n"
            "1310,Short,Primary,801,\n"
            "131003,College,16 plus,801,20000000\n")
    settings, problems = parse_registry_csv(text)
    assert [s.urn for s in settings] == ["131001"]
    assert [(p.line, p.message) for p in problems] == [
        (3, "URN '1310' is not 6 digits"),
        (4, "UKPRN '20000000' is not 8 digits starting with 1")]
    with pytest.raises(RegistryFileError, match="missing column"):
        parse_registry_csv("a,b\n1,2\n")


def test_an_anchor_is_split_into_parts_with_a_stable_id_and_one_digest_of_all_heads() -> None:
    heads = {UUID(int=n): (n % 7 + 1, f"{n:064x}") for n in range(ANCHOR_PART + 10)}
    grown = AnchorHeads(after=100, up_to=250, heads=heads)
    everything = [(p, v, h) for p, (v, h) in heads.items()]
    at = datetime(2026, 1, 5, tzinfo=UTC)
    parts = anchor_messages(grown, at, everything)
    assert [(m.part, m.parts, len(m.heads)) for m in parts] == [
        (1, 2, ANCHOR_PART), (2, 2, 10)]
    assert len({m.anchor_id for m in parts}) == 1
    assert parts[0].anchor_id == anchor_messages(grown, at, everything)[0].anchor_id
    assert all(m.all_heads_digest == AnchorHeads.digest(everything) for m in parts)
    assert AnchorHeads.digest(everything) == AnchorHeads.digest(list(reversed(everything)))
