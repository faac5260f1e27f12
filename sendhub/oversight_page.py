"""The oversight page: one self-contained HTML file of a trust's or an LA's figures, with
two charts drawn by matplotlib and embedded as SVG (compliance by month; per school),
the figures per school and in total, and, where the reader may see them, the pupils
behind each figure, each figure linking to its list.

Pure rendering from `sendhub.oversight.Oversight` (through its JSON `document`, so the
page shows exactly what `--format json` gives); no I/O. Accessible markup: the table has
a caption and header cells with scopes, every chart is a `figure` with a caption and an
SVG `title` and `desc`; print styles for A4 landscape.
"""

from __future__ import annotations

import io
from collections.abc import Sequence
from datetime import date, datetime
from importlib import resources
from typing import Any

from jinja2 import Environment, StrictUndefined, select_autoescape
from markupsafe import Markup, escape

from sendhub.oversight import MEASURES, Oversight, document

TRANSFER_COLOUR, EHC_COLOUR = "#1d4f91", "#c0392b"

_env = Environment(autoescape=select_autoescape(default=True), undefined=StrictUndefined,
                   trim_blocks=True, lstrip_blocks=True)
_env.filters["day"] = lambda value: date.fromisoformat(value).strftime("%-d %b %Y") \
    if value else ""


def _svg(fig: Any, chart_id: str, title: str, description: str) -> Markup:
    """The figure as inline SVG, labelled for assistive technology."""
    import matplotlib.pyplot as plt

    buffer = io.StringIO()
    fig.savefig(buffer, format="svg")
    plt.close(fig)
    svg = buffer.getvalue()
    svg = svg[svg.index("<svg"):]
    head_end = svg.index(">") + 1
    labelled = (svg[:head_end - 1] + f' role="img" aria-labelledby="{chart_id}-title '
                f'{chart_id}-desc">' + f'<title id="{chart_id}-title">{escape(title)}</title>'
                f'<desc id="{chart_id}-desc">{escape(description)}</desc>')
    return Markup(labelled + svg[head_end:])


def _pyplot() -> Any:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    return plt


def compliance_by_month_svg(months: Sequence[dict[str, Any]]) -> Markup:
    """Transfers sent within 15 school days and EHC plans within 20 weeks, as a share of
    those measured, for each month the clocks started in."""
    plt = _pyplot()
    labels = [datetime.strptime(m["month"], "%Y-%m").strftime("%b %Y") for m in months]
    fig, ax = plt.subplots(figsize=(10, 3.2), dpi=96)
    described = []
    for key, label, colour, marker in (
            ("transfers_sent_within_15_school_days", "Transfers sent within 15 school days",
             TRANSFER_COLOUR, "o"),
            ("ehc_plans_within_20_weeks", "EHC plans within 20 weeks", EHC_COLOUR, "s")):
        values = [m[key]["percent"] for m in months]
        ax.plot(range(len(months)), [float("nan") if v is None else v for v in values],
                marker=marker, color=colour, label=label, linewidth=1.5)
        shown = [f"{lab} {v:g}% of {m[key]['of']}" for lab, v, m in zip(labels, values, months,
                                                                          strict=True)
                 if v is not None]
        described.append(f"{label}: " + ("; ".join(shown) or "nothing measured") + ".")
    step = max(1, -(-len(months) // 12))  # at most 12 labels, so they never overlap
    ax.set_xticks(range(0, len(months), step), labels[::step], fontsize=8)
    ax.set_ylim(-5, 105)
    ax.set_ylabel("% in time", fontsize=9)
    ax.grid(axis="y", color="#eee")
    ax.legend(loc="lower left", fontsize=8, frameon=False)
    fig.tight_layout()
    return _svg(fig, "chart-months", "Compliance over time, by the month each clock started",
                " ".join(described))


def per_school_svg(schools: Sequence[dict[str, Any]]) -> Markup:
    """Per school: the two shares in time, as paired horizontal bars (none: not measured)."""
    plt = _pyplot()
    height = max(2.4, 0.34 * len(schools) + 1.2)
    fig, ax = plt.subplots(figsize=(10, height), dpi=96)
    names = [s["name"] for s in schools]
    described = []
    for offset, key, label, colour in (
            (-0.2, "transfers_sent_within_15_school_days", "Transfers within 15 school days",
             TRANSFER_COLOUR),
            (0.2, "ehc_plans_within_20_weeks", "EHC plans within 20 weeks", EHC_COLOUR)):
        values = [s["figures"][key]["percent"] for s in schools]
        ys = [n + offset for n in range(len(schools))]
        ax.barh(ys, [v or 0 for v in values], height=0.38, color=colour, label=label)
        for y, v in zip(ys, values, strict=True):
            ax.text(min(v or 0, 88) + 1, y, "n/a" if v is None else f"{v:g}%", va="center",
                    fontsize=7, color="#111" if (v or 0) < 88 else "#fff")
        described.append(f"{label}: " + "; ".join(
            f"{name} {'not measured' if v is None else f'{v:g}%'}"
            for name, v in zip(names, values, strict=True)) + ".")
    ax.set_yticks(range(len(schools)), names, fontsize=8)
    ax.set_xlim(0, 100)
    ax.set_ylim(len(schools) - 0.5, -0.5)
    ax.set_xlabel("% in time", fontsize=9)
    ax.grid(axis="x", color="#eee")
    ax.legend(loc="lower center", bbox_to_anchor=(0.5, 1.0), ncol=2, fontsize=8, frameon=False)
    fig.tight_layout()
    return _svg(fig, "chart-schools", "Compliance per school", " ".join(described))


def anchor(key: str, urn: str | None = None) -> str:
    return f"pupils-{key}" + (f"-{urn}" if urn else "")


def render_page(oversight: Oversight, *, generated_at: datetime, actor: str,
                how_to_see_pupils: str | None = None) -> str:
    doc = document(oversight)
    template = _env.from_string(
        resources.files("sendhub").joinpath("templates/oversight.html.j2").read_text())
    return template.render(
        doc=doc, measures=MEASURES, label=oversight.scope.label, anchor=anchor,
        chart_months=compliance_by_month_svg(doc["months"]),
        chart_schools=per_school_svg(doc["schools"]),
        generated_at=generated_at, actor=actor, how_to_see_pupils=how_to_see_pupils)
