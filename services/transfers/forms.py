"""The forms a receiving setting gets a packet in: JSON (the contract), a CTF SEN extract
(XML a school MIS imports) and a readable HTML page for the SENCO.

Pure: each is a function of the packet alone (the registry's names and DfE numbers are
already in it), so a form can be produced again at any time and always says the same.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import date
from importlib import resources
from typing import Literal

from jinja2 import Environment, StrictUndefined, select_autoescape
from lxml import etree

from contracts.packet import TransferPacketV1
from services.shared.sen_record import STATUS_WORDS, words

CTF_VERSION = "25.0"
SUPPLIER_ID = "SENDHUB"
LOST_PUPIL_LEA, LOST_PUPIL_ESTAB = "XXX", "XXXX"

Form = Literal["json", "ctf", "html"]


def render(packet: TransferPacketV1, form: Form) -> bytes:
    if form == "json":
        return packet.model_dump_json(indent=2).encode() + b"\n"
    if form == "ctf":
        return render_ctf(packet)
    return render_html(packet).encode()


def academic_year(day: date) -> str:
    """The academic year a day falls in, by its starting year (September to August)."""
    return str(day.year if day.month >= 9 else day.year - 1)


def _add(parent: etree._Element, tag: str, text: str | None = None) -> etree._Element:
    element = etree.SubElement(parent, tag)
    if text is not None:
        element.text = text
    return element


def render_ctf(packet: TransferPacketV1) -> bytes:
    """A partial Common Transfer File holding this pupil's SEN history."""
    return render_ctf_file([packet])


def render_ctf_file(packets: list[TransferPacketV1]) -> bytes:
    """One partial CTF for packets to the same receiver (the header is the first's).

    Element names and nesting follow the CTF layout as public code uses it (the XSD was
    not available). A pupil with no known destination is addressed like the lost pupil
    database: LEA XXX, Estab XXXX.
    """
    if not packets:
        raise ValueError("a CTF needs at least one pupil")
    packet = packets[0]
    root = etree.Element("CTfile")
    header = _add(root, "Header")
    _add(header, "DocumentName", "Common Transfer File")
    _add(header, "CTFversion", CTF_VERSION)
    _add(header, "DateTime", packet.generated_at.replace(tzinfo=None, microsecond=0).isoformat())
    _add(header, "DocumentQualifier", "partial")
    _add(header, "SupplierID", SUPPLIER_ID)
    source = _add(header, "SourceSchool")
    origin = packet.from_setting
    _add(source, "LEA", origin.la_code or "")
    _add(source, "Estab", origin.establishment_number or "")
    _add(source, "URN", origin.urn or "")
    _add(source, "SchoolName", origin.name or f"URN {origin.urn}")
    _add(source, "AcademicYear", academic_year(packet.move.effective_date))
    dest = _add(header, "DestSchool")
    to = packet.to_setting
    if to.kind == "unknown":
        _add(dest, "LEA", LOST_PUPIL_LEA)
        _add(dest, "Estab", LOST_PUPIL_ESTAB)
    else:
        _add(dest, "LEA", to.la_code or "")
        _add(dest, "Estab", to.establishment_number or "")
        _add(dest, "URN", to.urn or "")
    pupil_data = _add(root, "CTFpupilData")
    for packet in packets:
        _add_pupil(pupil_data, packet)
    return etree.tostring(root, xml_declaration=True, encoding="UTF-8", pretty_print=True)


def _add_pupil(pupil_data: etree._Element, packet: TransferPacketV1) -> None:
    pupil = _add(pupil_data, "Pupil")
    _add(pupil, "UPN", packet.pupil.upn)
    if packet.pupil.uln:
        _add(pupil, "UniqueLearnerNumber", packet.pupil.uln)
    _add(pupil, "Surname", packet.pupil.family_name)
    _add(pupil, "Forename", packet.pupil.given_name)
    _add(pupil, "DOB", packet.pupil.date_of_birth.isoformat())
    history = _add(pupil, "SENhistory")
    for episode in packet.sen_provision_history:
        sen = _add(history, "SEN")
        _add(sen, "StartDate", episode.start_date.isoformat())
        _add(sen, "SENprovision", episode.provision)
    needs = _add(history, "SENneeds")
    for need in packet.current_needs:
        element = _add(needs, "SENneed")
        _add(element, "SENtypeRank", str(need.rank))
        _add(element, "SENtype", need.code.value)


@dataclass(frozen=True)
class CTFSENHistory:
    """What a CTF says about SEN, read back: provision episodes and ranked needs."""

    upn: str
    episodes: list[tuple[date, str]]
    needs: list[tuple[int, str]]


def read_ctf(document: bytes) -> list[CTFSENHistory]:
    """Parse a CTF (as an importing MIS would) into each pupil's SEN history."""
    root = etree.fromstring(document, parser=etree.XMLParser(resolve_entities=False))
    found = []
    for pupil in root.iterfind("CTFpupilData/Pupil"):
        episodes = [(date.fromisoformat(sen.findtext("StartDate") or ""),
                     sen.findtext("SENprovision") or "")
                    for sen in pupil.iterfind("SENhistory/SEN")]
        needs = [(int(need.findtext("SENtypeRank") or 0), need.findtext("SENtype") or "")
                 for need in pupil.iterfind("SENhistory/SENneeds/SENneed")]
        found.append(CTFSENHistory(pupil.findtext("UPN") or "", episodes, needs))
    return found


NEED_WORDS = {
    "SPLD": "Specific learning difficulty", "MLD": "Moderate learning difficulty",
    "SLD": "Severe learning difficulty", "PMLD": "Profound and multiple learning difficulty",
    "SEMH": "Social, emotional and mental health", "SLCN": "Speech, language and communication",
    "HI": "Hearing impairment", "VI": "Visual impairment", "MSI": "Multi-sensory impairment",
    "PD": "Physical disability", "ASD": "Autistic spectrum disorder", "OTH": "Other difficulty",
    "NSA": "SEN support, no specialist assessment of type of need",
}

_env = Environment(autoescape=select_autoescape(default=True), undefined=StrictUndefined,
                   trim_blocks=True, lstrip_blocks=True)
_env.filters["words"] = lambda value: words(str(value))
_env.filters["day"] = lambda value: value.strftime("%-d %b %Y")


def render_html(packet: TransferPacketV1) -> str:
    """One self-contained page (no external assets), readable on screen, printed on A4."""
    template = _env.from_string(
        resources.files("services.transfers").joinpath("templates/packet.html.j2").read_text()
    )
    names = {s.urn: s.name for s in (packet.from_setting, packet.to_setting) if s.urn and s.name}
    latest_review = packet.plans.reviews[-1] if packet.plans.reviews else None
    return template.render(p=packet, status=STATUS_WORDS[packet.sen_status], needs=NEED_WORDS,
                           names=names, review=latest_review)
