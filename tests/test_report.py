"""The report renderer: the same blocks give matching Markdown and HTML, escaped, atomically written."""

from dashboard.report import Report, fmt, to_html, to_markdown, write_report


def _report() -> Report:
    rep = Report("t <1>")
    rep.h("Stages")
    rep.p("use `faceforge demo` & enjoy")
    rep.table(["stage", "seconds"], [("prepare", 1.23456), ("a|b", None), ("nan", float("nan"))], caption="c")
    rep.image("figures/x.png", "cap")
    rep.code("faceforge dashboard --corpus out")
    return rep


def test_fmt_values():
    assert fmt(0.123456) == "0.123"
    assert fmt(0.5, 1) == "0.5"
    assert fmt(None) == "–" and fmt(float("nan")) == "–"
    assert fmt(True) == "yes" and fmt(3) == "3"


def test_markdown_table_and_escaping():
    md = to_markdown(_report())
    assert md.startswith("# t <1>\n")
    assert "| stage | seconds |\n|---|---|\n| prepare | 1.235 |" in md
    assert "| a\\|b | – |" in md
    assert "![cap](figures/x.png)" in md
    assert "```\nfaceforge dashboard --corpus out\n```" in md


def test_html_escapes_and_renders_code_spans():
    page = to_html(_report())
    assert "<title>t &lt;1&gt;</title>" in page
    assert "<p>use <code>faceforge demo</code> &amp; enjoy</p>" in page
    assert "<td>prepare</td><td>1.235</td>" in page
    assert page.count("<tr>") == 4  # header + 3 rows
    assert "<img src='figures/x.png'" in page


def test_write_report_is_atomic_and_complete(tmp_path):
    md, page = write_report(_report(), tmp_path)
    assert md.read_text() == to_markdown(_report())
    assert page.read_text().endswith("</html>")
    assert sorted(p.name for p in tmp_path.iterdir()) == ["report.html", "report.md"]  # no temp files left
