"""``report.html`` read back with the standard library's :class:`html.parser.HTMLParser`, as a browser would see it.

:func:`parse_page` collects the page's text, its elements by ``id``, its images, its tables (cells as text) and
every attribute that could make the browser fetch something; :func:`check_report_page` asserts what every report
page must hold (self-contained, readable on a phone, the gate's verdict, every candidate, every chart as a
decodable PNG). The unit tests and the simulation's workflow test use the same checks.
"""

from __future__ import annotations

import base64
import io
from collections.abc import Iterable
from dataclasses import dataclass, field
from html.parser import HTMLParser

from matplotlib import image as mpimg

PNG_SIGNATURE = b"\x89PNG\r\n\x1a\n"
DATA_PNG = "data:image/png;base64,"
VOID = {"meta", "img", "br", "hr", "link", "input", "source", "wbr", "col", "area", "base", "embed", "track"}


@dataclass
class Element:
    tag: str
    attrs: dict[str, str]
    text: str = ""


@dataclass
class Page:
    text: str = ""
    tags: list[str] = field(default_factory=list)
    by_id: dict[str, Element] = field(default_factory=dict)
    images: list[dict[str, str]] = field(default_factory=list)
    fetching: list[tuple[str, str, str]] = field(default_factory=list)
    """(tag, attribute, value) of every src/href/action/... that is not a data: URI or a fragment."""
    metas: list[dict[str, str]] = field(default_factory=list)
    tables: list[list[list[str]]] = field(default_factory=list)
    title: str = ""
    styles: list[str] = field(default_factory=list)


@dataclass
class _Table:
    rows: list[list[str]] = field(default_factory=list)
    cell: list[str] | None = None


class _Parser(HTMLParser):
    def __init__(self) -> None:
        super().__init__(convert_charrefs=True)
        self.page = Page()
        self._open: list[tuple[str, dict[str, str]]] = []
        self._texts: dict[int, list[str]] = {}
        self._all: list[str] = []
        self._tables: list[_Table] = []  # the open tables, innermost last

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        values = {name: value or "" for name, value in attrs}
        self.page.tags.append(tag)
        for name in ("src", "href", "action", "poster", "srcset", "data"):
            value = values.get(name)
            if value is not None and not value.startswith(("data:", "#")):
                self.page.fetching.append((tag, name, value))
        if tag == "img":
            self.page.images.append(values)
        if tag == "meta":
            self.page.metas.append(values)
        if tag == "table":
            self._tables.append(_Table())
        if tag == "tr" and self._tables:
            self._tables[-1].rows.append([])
        if tag in ("td", "th") and self._tables:
            self._tables[-1].cell = []
        if tag not in VOID:
            self._open.append((tag, values))
            self._texts[len(self._open)] = []

    def handle_endtag(self, tag: str) -> None:
        if tag in VOID:
            return
        while self._open:
            depth = len(self._open)
            open_tag, values = self._open.pop()
            text = "".join(self._texts.pop(depth, []))
            if self._open:
                self._texts[len(self._open)].append(text)
            self._closed(open_tag, values, text)
            if open_tag == tag:
                break

    def _closed(self, tag: str, values: dict[str, str], text: str) -> None:
        if values.get("id"):
            self.page.by_id[values["id"]] = Element(tag, values, " ".join(text.split()))
        if tag == "title":
            self.page.title = text
        if tag == "style":
            self.page.styles.append(text)
        if tag in ("td", "th") and self._tables and self._tables[-1].cell is not None:
            table = self._tables[-1]
            table.rows[-1].append(" ".join("".join(table.cell or []).split()))
            table.cell = None
        if tag == "table" and self._tables:
            self.page.tables.append(self._tables.pop().rows)

    def handle_data(self, data: str) -> None:
        if self._open:
            self._texts[len(self._open)].append(data)
        for table in self._tables:  # a cell's text includes a nested table's
            if table.cell is not None:
                table.cell.append(data)
        if not self._open or self._open[-1][0] not in ("style", "script", "title"):
            self._all.append(data)

    def close(self) -> None:
        super().close()
        self.page.text = " ".join("".join(self._all).split())


def parse_page(markup: str) -> Page:
    parser = _Parser()
    parser.feed(markup)
    parser.close()
    return parser.page


def png_of(image: dict[str, str]) -> bytes:
    """The PNG bytes of an ``<img>`` whose ``src`` is a base64 ``data:image/png`` URI (asserted)."""
    src = image.get("src", "")
    assert src.startswith(DATA_PNG), src[:60]
    body = base64.b64decode(src.removeprefix(DATA_PNG), validate=True)
    assert body.startswith(PNG_SIGNATURE)
    return body


def check_report_page(markup: str, *, candidates: Iterable[str], charts: Iterable[str], gate: str) -> Page:
    """Assert what every report page holds; returns the parsed page for further checks.

    ``gate``: ``PASSED``, ``FAILED`` or ``NOT EVALUATED``; ``charts``: the chart titles expected as images.
    """
    assert markup.startswith("<!DOCTYPE html>")
    page = parse_page(markup)
    # Self-contained: nothing to fetch, no script needed
    assert page.fetching == [], page.fetching
    assert "script" not in page.tags and "link" not in page.tags
    assert page.styles and all("@import" not in s and "url(" not in s for s in page.styles)
    # Readable on a phone: a viewport, the charts scale, the tables scroll inside their own container
    assert {"name": "viewport", "content": "width=device-width, initial-scale=1"} in page.metas
    assert any("overflow-x: auto" in s and ".table-wrap" in s for s in page.styles)
    assert any("max-width" in s for s in page.styles)
    # The gate's verdict first
    verdict = page.by_id["verdict"]
    assert verdict.attrs.get("data-status") == gate
    assert page.by_id["gate-status"].text.startswith(f"Quality gate: {gate}")
    assert page.text.index("Quality gate:") < page.text.index("Candidates")
    # Every candidate in the candidates table
    candidates_table = next(t for t in page.tables if t and t[0] and t[0][0] == "candidate")
    assert [row[0] for row in candidates_table[1:]] == list(candidates)
    # Every chart, inlined as a decodable PNG, with its title
    titles = [image.get("alt") for image in page.images]
    assert titles == list(charts), titles
    for image in page.images:
        assert mpimg.imread(io.BytesIO(png_of(image)), format="png").ndim == 3
    return page
