"""SVG building blocks shared by the charts: the root element, text, legend, axes, colours.

Every element goes through :mod:`xml.etree.ElementTree`, which escapes text and attribute
values, so a device named ``<script>`` is drawn as those characters and never becomes markup.
Styling is by SVG presentation attributes and by classes of the static style sheet: the pages'
Content-Security-Policy forbids inline ``style`` attributes and scripts.
"""

from __future__ import annotations

import hashlib
import re
import xml.etree.ElementTree as ET
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Final

from panelhub.web.chartaxes import Tick

SVG_NAMESPACE: Final = "http://www.w3.org/2000/svg"
#: Okabe & Ito's colour-blind-safe palette (yellow left out: unreadable on white), in the
#: order series get them; the accent green of the pages is third.
PALETTE: Final = ("#0072B2", "#D55E00", "#009E73", "#CC79A7", "#E69F00", "#56B4E9", "#000000")
#: The "others" slice and disabled things: grey that still contrasts with white (3:1).
OTHERS_COLOUR: Final = "#8a959c"
#: Text on white: the pages' --fg (contrast 15:1) and --muted for tick labels (5.7:1, WCAG AA).
TEXT_COLOUR: Final = "#1d2327"
MUTED_COLOUR: Final = "#5f6b73"
GRID_COLOUR: Final = "#d8dee2"
FONT_SIZE: Final = 12
#: Legend entries: a 12 px swatch and a name of up to 20 characters (the device name limit).
LEGEND_ROW_H: Final = 20
LEGEND_ITEM_W: Final = 190
#: Characters XML 1.0 cannot carry at all (controls other than tab and newlines, and
#: non-characters): dropped from user text, which would otherwise make the SVG unparsable.
_NOT_XML: Final = re.compile("[\x00-\x08\x0b\x0c\x0e-\x1f\ud800-\udfff\ufffe\uffff]")


@dataclass(frozen=True, slots=True)
class Box:
    """The plot area, in SVG user units."""

    left: float
    top: float
    width: float
    height: float

    @property
    def bottom(self) -> float:
        return self.top + self.height

    @property
    def right(self) -> float:
        return self.left + self.width


def clean(text: str) -> str:
    return _NOT_XML.sub("", text)


def colour(index: int) -> str:
    return PALETTE[index % len(PALETTE)]


def chart_id(title: str, labels: Sequence[str]) -> str:
    """Return an id prefix for the chart's own ids, stable, distinct for distinct charts."""
    digest = hashlib.blake2s("\x1f".join([title, *labels]).encode(), digest_size=4)
    return "chart-" + digest.hexdigest()


def root(size: tuple[float, float], *, ident: str, title: str, description: str) -> ET.Element:
    """Return the ``<svg>`` element, labelled for screen readers by its title and description."""
    width, height = size
    svg = ET.Element(
        "svg",
        {
            "xmlns": SVG_NAMESPACE,
            "viewBox": f"0 0 {width:g} {height:g}",
            "width": f"{width:g}",
            "height": f"{height:g}",
            "class": "chart",
            "role": "img",
            "aria-labelledby": f"{ident}-title {ident}-desc",
            "font-family": "system-ui, sans-serif",
            "font-size": str(FONT_SIZE),
            "fill": TEXT_COLOUR,
        },
    )
    ET.SubElement(svg, "title", {"id": f"{ident}-title"}).text = clean(title)
    ET.SubElement(svg, "desc", {"id": f"{ident}-desc"}).text = clean(description)
    return svg


def text(parent: ET.Element, xy: tuple[float, float], content: str, **attributes: str) -> None:
    x, y = xy
    node = ET.SubElement(parent, "text", {"x": f"{x:.1f}", "y": f"{y:.1f}", **attributes})
    node.text = clean(content)


def tooltip(parent: ET.Element, content: str) -> None:
    ET.SubElement(parent, "title").text = clean(content)


def value_axis(svg: ET.Element, ticks: Sequence[Tick], box: Box, unit: str) -> None:
    """Draw horizontal grid lines with their labels left of the plot, and the unit above."""
    group = ET.SubElement(svg, "g", {"class": "axis", "fill": MUTED_COLOUR})
    low, high = ticks[0].position, ticks[-1].position
    for tick in ticks:
        y = box.bottom - (tick.position - low) / (high - low) * box.height
        line = {"x1": f"{box.left:.1f}", "x2": f"{box.right:.1f}", "y1": f"{y:.1f}"}
        ET.SubElement(group, "line", {**line, "y2": f"{y:.1f}", "stroke": GRID_COLOUR})
        text(group, (box.left - 6, y + 4), tick.label, **{"text-anchor": "end"})
    text(group, (box.left - 6, box.top - 10), unit, **{"text-anchor": "end"})


def time_axis(svg: ET.Element, ticks: Sequence[tuple[float, str]], box: Box) -> None:
    """Draw tick marks and labels under the plot at the given x positions."""
    group = ET.SubElement(svg, "g", {"class": "axis", "fill": MUTED_COLOUR})
    ET.SubElement(group, "line", _line(box.left, box.bottom, box.right, box.bottom))
    for x, label in ticks:
        ET.SubElement(group, "line", _line(x, box.bottom, x, box.bottom + 5))
        text(group, (x, box.bottom + 18), label, **{"text-anchor": "middle"})


def legend_height(count: int, width: float) -> float:
    per_row = max(1, int(width // LEGEND_ITEM_W))
    return -(-count // per_row) * LEGEND_ROW_H


def legend(svg: ET.Element, items: Sequence[tuple[str, str]], box: Box, top: float) -> None:
    """Draw (label, fill) swatches in rows under the plot; ``fill`` may be a pattern url."""
    group = ET.SubElement(svg, "g", {"class": "legend"})
    per_row = max(1, int(box.width // LEGEND_ITEM_W))
    for index, (label, fill) in enumerate(items):
        x = box.left + (index % per_row) * LEGEND_ITEM_W
        y = top + (index // per_row) * LEGEND_ROW_H
        swatch = {"x": f"{x:.1f}", "y": f"{y:.1f}", "width": "12", "height": "12"}
        ET.SubElement(group, "rect", {**swatch, "fill": fill})
        text(group, (x + 18, y + 10), label)


def serialise(svg: ET.Element) -> str:
    return ET.tostring(svg, encoding="unicode")


def _line(x1: float, y1: float, x2: float, y2: float) -> dict[str, str]:
    return {
        "x1": f"{x1:.1f}",
        "y1": f"{y1:.1f}",
        "x2": f"{x2:.1f}",
        "y2": f"{y2:.1f}",
        "stroke": MUTED_COLOUR,
    }
