"""The main job's report: one document, written as both Markdown and self-contained-ish HTML.

A report is a list of blocks (heading, paragraph, table, image, code); `write_report` renders the
same blocks twice so the two files can never disagree. Images are referenced relative to the report
folder (PNGs written beside it).
"""

from __future__ import annotations

import html
import os
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Sequence

from core.common import atomic_write


@dataclass(frozen=True)
class Heading:
    text: str
    level: int = 2


@dataclass(frozen=True)
class Paragraph:
    text: str


@dataclass(frozen=True)
class Table:
    columns: Sequence[str]
    rows: Sequence[Sequence[Any]]
    caption: str = ""


@dataclass(frozen=True)
class Image:
    path: str  # relative to the report folder
    caption: str = ""
    width: int = 640


@dataclass(frozen=True)
class Code:
    text: str


@dataclass
class Report:
    title: str
    blocks: list = field(default_factory=list)

    def h(self, text: str, level: int = 2) -> None:
        self.blocks.append(Heading(text, level))

    def p(self, text: str) -> None:
        self.blocks.append(Paragraph(text))

    def table(self, columns: Sequence[str], rows: Sequence[Sequence[Any]], caption: str = "") -> None:
        self.blocks.append(Table(list(columns), [list(r) for r in rows], caption))

    def image(self, path: str | os.PathLike, caption: str = "", width: int = 640) -> None:
        self.blocks.append(Image(str(path), caption, width))

    def code(self, text: str) -> None:
        self.blocks.append(Code(text))


def fmt(value: Any, digits: int = 3) -> str:
    """Numbers as a reader wants them in a table: fixed digits, no 'nan' noise."""
    if value is None:
        return "–"
    if isinstance(value, bool):
        return "yes" if value else "no"
    if isinstance(value, float):
        if value != value:  # NaN
            return "–"
        return f"{value:.{digits}f}"
    return str(value)


# ---------------------------------------------------------------- Markdown
def to_markdown(report: Report) -> str:
    out = [f"# {report.title}", ""]
    for b in report.blocks:
        if isinstance(b, Heading):
            out += ["#" * b.level + " " + b.text, ""]
        elif isinstance(b, Paragraph):
            out += [b.text, ""]
        elif isinstance(b, Table):
            if b.caption:
                out += [f"*{b.caption}*", ""]
            out.append("| " + " | ".join(str(c) for c in b.columns) + " |")
            out.append("|" + "---|" * len(b.columns))
            for row in b.rows:
                out.append("| " + " | ".join(fmt(v).replace("|", "\\|") for v in row) + " |")
            out.append("")
        elif isinstance(b, Image):
            out += [f"![{b.caption}]({b.path})", ""]
            if b.caption:
                out += [f"*{b.caption}*", ""]
        elif isinstance(b, Code):
            out += ["```", b.text.rstrip(), "```", ""]
    return "\n".join(out)


# ---------------------------------------------------------------- HTML
_CSS = """
body{font-family:system-ui,-apple-system,Segoe UI,Roboto,sans-serif;max-width:1100px;margin:2em auto;
padding:0 1em;color:#1d1d1f;line-height:1.45}
h1{border-bottom:2px solid #444;padding-bottom:.2em}h2{margin-top:1.8em;border-bottom:1px solid #ccc}
table{border-collapse:collapse;margin:.6em 0 1.2em;font-size:.92em}
th,td{border:1px solid #bbb;padding:.3em .6em;text-align:right}th{background:#f0f0f0}
td:first-child,th:first-child{text-align:left}caption{caption-side:top;text-align:left;font-style:italic;
padding-bottom:.3em}figure{margin:1em 0}figcaption{font-style:italic;color:#555;font-size:.9em}
img{max-width:100%;border:1px solid #ddd}pre{background:#f6f6f6;padding:.7em;overflow-x:auto}
"""


def to_html(report: Report) -> str:
    e = html.escape
    out = ["<!doctype html><html lang='en'><head><meta charset='utf-8'>",
           f"<title>{e(report.title)}</title><style>{_CSS}</style></head><body>",
           f"<h1>{e(report.title)}</h1>"]
    for b in report.blocks:
        if isinstance(b, Heading):
            out.append(f"<h{b.level}>{e(b.text)}</h{b.level}>")
        elif isinstance(b, Paragraph):
            out.append(f"<p>{_inline(b.text)}</p>")
        elif isinstance(b, Table):
            out.append("<table>")
            if b.caption:
                out.append(f"<caption>{e(b.caption)}</caption>")
            out.append("<tr>" + "".join(f"<th>{e(str(c))}</th>" for c in b.columns) + "</tr>")
            for row in b.rows:
                out.append("<tr>" + "".join(f"<td>{e(fmt(v))}</td>" for v in row) + "</tr>")
            out.append("</table>")
        elif isinstance(b, Image):
            out.append(f"<figure><img src='{e(b.path)}' width='{b.width}' alt='{e(b.caption)}'>"
                       + (f"<figcaption>{e(b.caption)}</figcaption>" if b.caption else "") + "</figure>")
        elif isinstance(b, Code):
            out.append(f"<pre>{e(b.text)}</pre>")
    out.append("</body></html>")
    return "\n".join(out)


def _inline(text: str) -> str:
    """Escape, then render `code` spans (the only inline markup the report uses)."""
    parts = html.escape(text).split("`")
    return "".join(f"<code>{p}</code>" if i % 2 else p for i, p in enumerate(parts))


def write_report(report: Report, out_dir: str | os.PathLike) -> tuple[Path, Path]:
    """Write ``report.md`` and ``report.html`` into ``out_dir`` atomically; return both paths."""
    out_dir = Path(out_dir)
    md, page = out_dir / "report.md", out_dir / "report.html"
    with atomic_write(md, "w") as f:
        f.write(to_markdown(report))
    with atomic_write(page, "w") as f:
        f.write(to_html(report))
    return md, page
