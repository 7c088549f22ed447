"""End to end: `faceforge dashboard`'s server on a free localhost port, every page in headless Chromium."""

from __future__ import annotations

import pytest

from dashboard.screenshots import PAGES, capture, chromium_path, running_app

pytest.importorskip("playwright", reason="the playwright package is not installed (pip install -e '.[dev]')")
if chromium_path() is None:
    pytest.skip("chromium is not installed (run `make browser`)", allow_module_level=True)

MIN_PIXEL_STD = 5.0  # a blank (single-colour) page has std 0


@pytest.mark.slow
@pytest.mark.timeout(300)
def test_every_page_renders_in_chromium(tmp_path):
    from dashboard.fixture import make_fixture_corpus, make_fixture_results, make_fixture_run

    corpus = make_fixture_corpus(tmp_path / "corpus", size=48, n_frames=4)
    make_fixture_run(tmp_path / "runs" / "cnn", corpus)
    make_fixture_results(tmp_path / "results")
    with running_app(corpus, tmp_path / "runs", results=tmp_path / "results", db=tmp_path / "review.sqlite",
                     cache=tmp_path / "cache", log_path=tmp_path / "server.log") as url:
        assert url.startswith("http://127.0.0.1:")
        # a deep link first, on the fresh server: it must run through the app (config, navigation)
        order = [p for p in PAGES if p[0] == "item"] + [p for p in PAGES if p[0] != "item"]
        shots = capture(url, tmp_path / "shots", order, item="fewshot_d0_by_d3_raw", width=1000, height=700)
    assert sorted(s.name for s in shots) == sorted(p[0] for p in PAGES)
    for shot in shots:
        assert shot.errors == 0, f"{shot.name}: error element on the page"
        assert shot.pixel_std > MIN_PIXEL_STD, f"{shot.name}: screenshot looks blank"
        assert shot.path.stat().st_size > 5_000
