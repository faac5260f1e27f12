"""The forms a receiving setting gets a packet in: JSON (the contract), a CTF SEN extract
(XML a school MIS imports) and a readable HTML page for the SENCO.

Pure: each is a function of the packet alone (the registry's names and DfE numbers are
already in it), so a form can be produced again at any time and always says the same.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import date
from typing import Literal

from jinja2 import Environment, PackageLoader, StrictUndefined, select_autoescape
from lxml import etree
from markupsafe import Markup

from contracts.packet import Setting, TransferPacketV1
from services.shared.sen_wording import STATUS_WORDS, words
from services.transfers import wording
from services.transfers.domain import with_registry
from services.transfers.registry import RegisteredSetting

SUPPLIER_ID = "SENDHUB"
LOST_PUPIL_LEA, LOST_PUPIL_ESTAB = "XXX", "XXXX"

Form = Literal["json", "ctf", "html"]


def render(packet: TransferPacketV1, form: Form, *,
           replaced: TransferPacketV1 | None = None) -> bytes:
    """`replaced`, when the caller has it, is the packet an amendment replaces: the HTML
    then says when that one was sent."""
    if form == "json":
        return packet.model_dump_json(indent=2).encode() + b"\n"
    if form == "ctf":
        return render_ctf(packet)
    return render_html(packet, replaced=replaced).encode()


def academic_year(day: date) -> str:
    """The academic year a day falls in, by its starting year (September to August)."""
    return str(day.year if day.month >= 9 else day.year - 1)


def ctf_version(day: date) -> str:
    """The CTF specification in force on a day: DfE publishes "CTF NN" for use from the
    September of 20NN (CTF 20 from September 2020, CTF 23 from September 2023, CTF 25 from
    September 2025), and writers put "NN.0" in `CTFversion`; so it is the two-digit
    starting year of the academic year, as DfE's writers work out `AcademicYear`."""
    return f"{int(academic_year(day)) % 100:02d}.0"


class CTFRefused(ValueError):
    """A packet the hub will not put in a CTF (the message says why and what to do)."""


def ctf_refusal(packet: TransferPacketV1) -> str | None:
    """Why this packet gets no CTF, or None. A CTF with an empty LEA or Estab in its
    header is refused or misfiled by the importing MIS, and post-16 providers do not
    import CTFs, so neither is offered one."""
    if packet.addressed_to:
        return (f"packet {packet.packet_id} is a notice to the local authority "
                f"({packet.addressed_to}), not a school's transfer: a CTF goes from school to "
                "school; use the JSON or HTML form")
    if packet.to_setting.kind == "post16_provider":
        return (f"{packet.to_setting.name or packet.to_setting.receiver} is a post-16 "
                "provider: post-16 providers do not import CTFs; use the JSON or HTML form")
    for role, setting in (("sending", packet.from_setting), ("receiving", packet.to_setting)):
        if setting.kind == "school" and not (setting.la_code and setting.establishment_number):
            return (f"the {role} school (URN {setting.urn}) is not in the settings registry, "
                    "so its LA code and establishment number are unknown and a CTF would "
                    "have an empty LEA/Estab: import it into the registry with "
                    "`sendhub settings import FILE` (DfE establishment data), then ask again")
    return None


def with_current_registry(packets: Sequence[TransferPacketV1],
                          known: Sequence[RegisteredSetting]) -> list[TransferPacketV1]:
    """Packets built while a setting was not in the registry, with the registry's names
    and numbers as they are now (so importing the setting makes its CTF possible)."""
    by_urn = {s.urn: s for s in known}
    by_ukprn = {s.ukprn: s for s in known if s.ukprn}

    def lookup(setting: Setting) -> RegisteredSetting | None:
        if setting.kind == "school":
            return by_urn.get(setting.urn or "")
        return by_ukprn.get(setting.ukprn or "")

    return [p if ctf_refusal(p) is None else with_registry(p, lookup) for p in packets]


def current_packets(packets: Sequence[TransferPacketV1]) -> list[TransferPacketV1]:
    """The packets not replaced by a later one in the same set (an amendment or a
    re-route names the packet it supersedes): an inbox's CTF holds each pupil once."""
    replaced = {p.supersedes for p in packets if p.supersedes}
    return [p for p in packets if p.packet_id not in replaced]


@dataclass(frozen=True)
class CTFFile:
    """One CTF: the packets from one sending school, named as DfE names CTF files."""

    from_urn: str
    school: str
    name: str
    body: bytes
    pupils: int


def ctf_files(packets: Sequence[TransferPacketV1]) -> tuple[list[CTFFile], list[str]]:
    """An inbox as CTFs: one per sending school (a CTF header names one source school),
    without superseded packets; and, for packets that get no CTF, why not."""
    by_school: dict[str, list[TransferPacketV1]] = {}
    refused: list[str] = []
    for packet in current_packets(packets):
        reason = ctf_refusal(packet)
        if reason:
            refused.append(f"packet {packet.packet_id}: {reason}")
            continue
        by_school.setdefault(packet.from_setting.urn or "", []).append(packet)
    files = []
    for urn, group in sorted(by_school.items()):
        origin, to = group[0].from_setting, group[0].to_setting
        dest = (f"{to.la_code}{to.establishment_number}" if to.kind == "school"
                else LOST_PUPIL_LEA + LOST_PUPIL_ESTAB)
        name = f"{origin.la_code}{origin.establishment_number}_CTF_{dest}_001.XML"
        files.append(CTFFile(urn, origin.name or f"URN {urn}", name, render_ctf_file(group),
                             len(group)))
    return files, refused


def _add(parent: etree._Element, tag: str, text: str | None = None) -> etree._Element:
    element = etree.SubElement(parent, tag)
    if text is not None:
        element.text = text
    return element


def render_ctf(packet: TransferPacketV1) -> bytes:
    """A partial Common Transfer File holding this pupil's SEN history."""
    return render_ctf_file([packet])


def render_ctf_file(packets: Sequence[TransferPacketV1]) -> bytes:
    """One partial CTF for packets from one sending school to one receiver.

    Element names and nesting follow the CTF layout as DfE's and MIS suppliers' public
    code uses it (the XSD was not available). A pupil with no known destination is
    addressed like the lost pupil database: LEA XXX, Estab XXXX. Raises `CTFRefused`
    rather than write an empty LEA/Estab or mix sending schools under one header.
    """
    if not packets:
        raise ValueError("a CTF needs at least one pupil")
    for p in packets:
        reason = ctf_refusal(p)
        if reason:
            raise CTFRefused(f"No CTF for packet {p.packet_id}: {reason}.")
    if len({(p.from_setting.urn, p.to_setting.receiver) for p in packets}) > 1:
        raise CTFRefused("A CTF holds pupils from one sending school to one receiver: "
                         "write one CTF per sending school (`ctf_files`).")
    root = etree.Element("CTfile")
    _add_header(root, packets[0])
    pupil_data = _add(root, "CTFpupilData")
    for packet in packets:
        _add_pupil(pupil_data, packet)
    return etree.tostring(root, xml_declaration=True, encoding="UTF-8", pretty_print=True)


def _add_header(root: etree._Element, packet: TransferPacketV1) -> None:
    header = _add(root, "Header")
    _add(header, "DocumentName", "Common Transfer File")
    _add(header, "CTFversion", ctf_version(packet.generated_at.date()))
    _add(header, "DateTime", packet.generated_at.replace(tzinfo=None, microsecond=0).isoformat())
    _add(header, "DocumentQualifier", "partial")
    _add(header, "SupplierID", SUPPLIER_ID)
    source = _add(header, "SourceSchool")
    origin = packet.from_setting
    _add(source, "LEA", origin.la_code)
    _add(source, "Estab", origin.establishment_number)
    _add(source, "URN", origin.urn)
    _add(source, "SchoolName", origin.name or f"URN {origin.urn}")
    _add(source, "AcademicYear", academic_year(packet.move.effective_date))
    dest = _add(header, "DestSchool")
    to = packet.to_setting
    if to.kind == "unknown":
        _add(dest, "LEA", LOST_PUPIL_LEA)
        _add(dest, "Estab", LOST_PUPIL_ESTAB)
    else:
        _add(dest, "LEA", to.la_code)
        _add(dest, "Estab", to.establishment_number)
        _add(dest, "URN", to.urn)


def _add_pupil(pupil_data: etree._Element, packet: TransferPacketV1) -> None:
    pupil = _add(pupil_data, "Pupil")
    _add(pupil, "UPN", packet.pupil.upn)
    if packet.pupil.uln:
        _add(pupil, "UniqueLearnerNumber", packet.pupil.uln)
    _add(pupil, "Surname", packet.pupil.family_name)
    _add(pupil, "Forename", packet.pupil.given_name)
    _add(pupil, "DOB", packet.pupil.date_of_birth.isoformat())
    if packet.pupil.gender:
        _add(pupil, "Sex", packet.pupil.gender)  # as DfE's own CTF 25 writer (GIAP) names it
    history = _add(pupil, "SENhistory")
    # Newest first: an importer that reads one SEN element takes the first, so the
    # first is the pupil's current provision; the rest follow, most recent first.
    episodes = sorted(packet.sen_provision_history, key=lambda e: e.start_date, reverse=True)
    for episode in episodes:
        sen = _add(history, "SEN")
        _add(sen, "StartDate", episode.start_date.isoformat())
        _add(sen, "SENprovision", episode.provision)
    if episodes and episodes[0].provision == "N":
        return  # the census allows no SEN need with provision N
    needs = _add(history, "SENneeds")
    for need in packet.current_needs:
        element = _add(needs, "SENneed")
        _add(element, "SENtypeRank", str(need.rank))
        _add(element, "SENtype", need.code.value)


@dataclass(frozen=True)
class CTFSENHistory:
    """What a CTF says about SEN, read back: provision episodes (by start date, oldest
    first), ranked needs, and the provision in the first `SEN` element (what an
    importer that reads one takes)."""

    upn: str
    episodes: list[tuple[date, str]]
    needs: list[tuple[int, str]]
    first_provision: str | None = None
    gender: str | None = None


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
        found.append(CTFSENHistory(pupil.findtext("UPN") or "", sorted(episodes), needs,
                                   episodes[0][1] if episodes else None,
                                   pupil.findtext("Sex")))
    return found


NEED_WORDS = {
    "SPLD": "Specific learning difficulty", "MLD": "Moderate learning difficulty",
    "SLD": "Severe learning difficulty", "PMLD": "Profound and multiple learning difficulty",
    "SEMH": "Social, emotional and mental health", "SLCN": "Speech, language and communication",
    "HI": "Hearing impairment", "VI": "Visual impairment", "MSI": "Multi-sensory impairment",
    "PD": "Physical disability", "ASD": "Autistic spectrum disorder", "OTH": "Other difficulty",
    "NSA": "SEN support, no specialist assessment of type of need",
}

_env = Environment(loader=PackageLoader("services.transfers", "templates"),
                   autoescape=select_autoescape(default=True), undefined=StrictUndefined,
                   trim_blocks=True, lstrip_blocks=True, auto_reload=False)
_env.filters["words"] = lambda value: words(str(value))
_env.filters["day"] = wording.day


def _page_context(packet: TransferPacketV1, replaced: TransferPacketV1 | None
                  ) -> dict[str, object]:
    latest_review = packet.plans.reviews[-1] if packet.plans.reviews else None
    return {"p": packet, "status": STATUS_WORDS[packet.sen_status], "needs": NEED_WORDS,
            "review": latest_review, "w": wording,
            "amendment": wording.amendment_sentence(packet, replaced),
            "open_items": wording.open_items(packet),
            "exams_first": wording.exam_arrangements_first(packet)}


def render_html(packet: TransferPacketV1, *, replaced: TransferPacketV1 | None = None) -> str:
    """One self-contained page (no external assets, no script), readable on screen and
    printed on A4, in the receiving setting's words (see `wording`)."""
    return _env.get_template("packet.html.j2").render(
        _page_context(packet, replaced), web=False, after_heading="")


def render_html_body(packet: TransferPacketV1, *, replaced: TransferPacketV1 | None = None,
                     after_heading: str = "") -> str:
    """The same content without the page around it, for the web application's packet
    page (its layout, its stylesheet): the LA's notice comes after the pupil's name so
    the headings stay in order, and `after_heading` (HTML the caller made, already
    escaped) follows the amendment banner."""
    return _env.get_template("packet_body.html.j2").render(
        _page_context(packet, replaced), web=True, after_heading=Markup(after_heading))
