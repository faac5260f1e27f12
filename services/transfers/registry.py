"""The settings registry: schools and post-16 providers the hub knows by name and number.

Pure: parsing the CSV layout of the DfE's establishment data (Get Information about
Schools), keeping the columns the hub uses. A row that cannot be used is reported with
its line number and why; the good rows are still imported.
"""

from __future__ import annotations

import csv
import io
import re
from dataclasses import dataclass

COLUMNS = {
    "urn": "URN",
    "la_code": "LA (code)",
    "la_name": "LA (name)",
    "establishment_number": "EstablishmentNumber",
    "name": "EstablishmentName",
    "phase": "PhaseOfEducation (name)",
    "ukprn": "UKPRN",
    "trust": "Trusts (name)",
}
REQUIRED = ("URN", "EstablishmentName", "PhaseOfEducation (name)")


@dataclass(frozen=True)
class RegisteredSetting:
    """A school (URN, LA code, establishment number) or a post-16 provider (UKPRN)."""

    urn: str
    name: str
    phase: str
    la_code: str | None = None
    la_name: str | None = None
    establishment_number: str | None = None
    ukprn: str | None = None
    trust: str | None = None

    @property
    def belongs_to(self) -> str:
        """The trust if it is in one, else its local authority."""
        return self.trust or self.la_name or "-"


@dataclass(frozen=True)
class RowProblem:
    line: int
    message: str


class RegistryFileError(ValueError):
    """The file is not a registry CSV at all (missing columns)."""


@dataclass(frozen=True)
class RegistryLine:
    """One row of a registry CSV as read: the setting it gives, or why it was refused.
    `line` counts rows as the CSV reader does (the header is line 1)."""

    line: int
    urn: str | None
    name: str | None
    setting: RegisteredSetting | None
    problem: str | None


def read_registry_csv(text: str) -> list[RegistryLine]:
    """Every row of the file, each with its setting or its problem (for a per-line report)."""
    reader = csv.DictReader(io.StringIO(text.lstrip("\ufeff")))
    missing = [c for c in REQUIRED if c not in (reader.fieldnames or [])]
    if missing:
        raise RegistryFileError(
            f"not a settings registry CSV: missing column(s) {', '.join(missing)}; "
            f"expected the DfE establishment data layout ({', '.join(COLUMNS.values())})")
    lines: list[RegistryLine] = []
    for line, row in enumerate(reader, start=2):
        values = {key: (row.get(column) or "").strip() or None for key, column in COLUMNS.items()}
        problem = _problem(values)
        setting = None if problem else RegisteredSetting(**values)  # type: ignore[arg-type]
        lines.append(RegistryLine(line, values["urn"], values["name"], setting, problem))
    return lines


def parse_registry_csv(text: str) -> tuple[list[RegisteredSetting], list[RowProblem]]:
    lines = read_registry_csv(text)
    return ([r.setting for r in lines if r.setting is not None],
            [RowProblem(r.line, r.problem) for r in lines if r.problem is not None])


def skipped_message(source: str, problem: RowProblem) -> str:
    """How `sendhub settings import` reports a refused row (and the admin console too)."""
    return f"{source}:{problem.line}: skipped: {problem.message}"


def imported_message(source: str, count: int, skipped: int) -> str:
    return (f"Imported {count} setting(s) from {source}"
            + (f"; {skipped} row(s) skipped" if skipped else ""))


def _problem(values: dict[str, str | None]) -> str | None:
    if not values["urn"] or not re.fullmatch(r"\d{6}", values["urn"]):
        return f"URN {values['urn']!r} is not 6 digits"
    if not values["name"]:
        return "EstablishmentName is empty"
    if not values["phase"]:
        return "PhaseOfEducation (name) is empty"
    if values["la_code"] and not re.fullmatch(r"\d{3}", values["la_code"]):
        return f"LA (code) {values['la_code']!r} is not 3 digits"
    if values["establishment_number"] and not re.fullmatch(r"\d{4}",
                                                           values["establishment_number"]):
        return f"EstablishmentNumber {values['establishment_number']!r} is not 4 digits"
    if values["ukprn"] and not re.fullmatch(r"1\d{7}", values["ukprn"]):
        return f"UKPRN {values['ukprn']!r} is not 8 digits starting with 1"
    return None
