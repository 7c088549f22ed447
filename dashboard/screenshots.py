"""Start the dashboard on a free localhost port and screenshot every page in headless Chromium.

  python -m dashboard.screenshots --corpus CORPUS [--runs RUNS] [--out docs/screenshots]

Used by the end-to-end test and to make the README's screenshots. Needs the ``playwright`` Python
package and a Chromium binary (Debian's ``chromium``; ``make browser`` installs it).
"""

from __future__ import annotations

import argparse
import contextlib
import shutil
import socket
import subprocess
import sys
import time
import urllib.request
from dataclasses import dataclass
from pathlib import Path
from typing import Iterator

CHROMIUM_ARGS = ["--headless", "--no-sandbox", "--disable-gpu", "--disable-background-networking",
                 "--disable-component-update", "--disable-sync", "--no-first-run"]
# (file name, url path, a heading the page shows only once it has rendered with the app's config)
PAGES = (
    ("corpus", "", "Thumbnails"),
    ("item", "item", "Detector scores per frame"),
    ("detectors", "detectors", "Studies"),
    ("check", "check", "Check a file"),
    ("review", "review", "Labels"),
    ("blind", "blind", "USER metric"),
)
START_TIMEOUT_S = 90.0
RENDER_TIMEOUT_MS = 60_000
ERROR_SELECTOR = '[data-testid="stException"]'


def chromium_path() -> str | None:
    for name in ("chromium", "chromium-browser", "google-chrome"):
        found = shutil.which(name)
        if found:
            return found
    return "/usr/bin/chromium" if Path("/usr/bin/chromium").exists() else None


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@contextlib.contextmanager
def running_app(corpus: Path, runs: Path | None = None, *, results: Path | None = None, db: Path | None = None,
                cache: Path | None = None, port: int | None = None, log_path: Path | None = None) -> Iterator[str]:
    """Serve the app (``faceforge dashboard``'s command) and yield its base URL once healthy."""
    from core.common import FaceforgeError
    from core.processes import die_with_parent, stop
    from dashboard.commands.serve import build_command

    port = port or free_port()
    args = argparse.Namespace(corpus=corpus, runs=runs, results=results, db=db, cache=cache, host="127.0.0.1",
                              port=port, max_upload_mb=50)
    log = open(log_path, "wb") if log_path else subprocess.DEVNULL
    proc = subprocess.Popen(build_command(args), stdout=log, stderr=subprocess.STDOUT,
                            preexec_fn=die_with_parent if sys.platform.startswith("linux") else None)
    url = f"http://127.0.0.1:{port}"
    try:
        deadline = time.monotonic() + START_TIMEOUT_S
        while True:
            if proc.poll() is not None:
                raise FaceforgeError(f"dashboard server exited with code {proc.returncode}")
            with contextlib.suppress(OSError):
                with urllib.request.urlopen(f"{url}/_stcore/health", timeout=2) as r:
                    if r.status == 200:
                        break
            if time.monotonic() > deadline:
                raise FaceforgeError(f"dashboard server did not become healthy in {START_TIMEOUT_S:.0f} s")
            time.sleep(0.5)
        yield url
    finally:
        stop(proc)   # also on SIGTERM: main() turns it into an exception (core.processes)
        if log_path:
            log.close()


@dataclass(frozen=True)
class Shot:
    name: str
    path: Path
    errors: int        # error elements on the page
    pixel_std: float   # 0 for a blank page


def capture(url: str, out_dir: Path, pages=PAGES, *, item: str | None = None, reviewer: str | None = None,
            upload: Path | None = None, width: int = 1280, height: int = 900, full_page: bool = True) -> list[Shot]:
    """Screenshot each page (waiting for its marker text and for Streamlit to finish running).
    ``reviewer`` is typed into the Review / Blind study pages, ``upload`` given to Check a file."""
    import numpy as np
    from PIL import Image
    from playwright.sync_api import sync_playwright

    out_dir.mkdir(parents=True, exist_ok=True)
    shots = []
    with sync_playwright() as pw:
        browser = pw.chromium.launch(executable_path=chromium_path(), args=CHROMIUM_ARGS)
        try:
            page = browser.new_page(viewport={"width": width, "height": height})
            for name, path, marker in pages:
                query = f"?item={item}" if (name == "item" and item) else ""
                page.goto(f"{url}/{path}{query}", wait_until="domcontentloaded")
                # the page's marker text, or an error element (fails fast instead of timing out)
                page.get_by_role("heading", name=marker, exact=True).or_(page.locator(ERROR_SELECTOR)).first.wait_for(
                    timeout=RENDER_TIMEOUT_MS)
                _wait_idle(page)
                if reviewer and name in ("review", "blind"):
                    box = page.get_by_label("Reviewer name")
                    box.fill(reviewer)
                    box.press("Enter")
                    _wait_idle(page)
                if upload is not None and name == "check":
                    page.locator('input[type="file"]').set_input_files(str(upload))
                    page.get_by_role("heading", name="Faces found", exact=True).or_(page.locator(ERROR_SELECTOR)).first.wait_for(
                        timeout=RENDER_TIMEOUT_MS)
                    _wait_idle(page)
                target = out_dir / f"{name}.png"
                page.screenshot(path=str(target), full_page=full_page)
                pixels = np.asarray(Image.open(target).convert("L"), dtype=np.float32)
                shots.append(Shot(name, target, page.locator(ERROR_SELECTOR).count(), float(pixels.std())))
        finally:
            browser.close()
    return shots


def _wait_idle(page, timeout_s: float = 60.0) -> None:
    """Wait until the script has finished (``stApp[data-test-script-state=notRunning]``) and every
    placeholder skeleton has been replaced by its element, then for images to load."""
    deadline = time.monotonic() + timeout_s
    page.wait_for_timeout(500)
    while time.monotonic() < deadline:
        state = page.evaluate("() => document.querySelector('[data-testid=\"stApp\"]')"
                              "?.getAttribute('data-test-script-state')")
        if state == "notRunning" and page.locator('[data-testid="stSkeleton"]').count() == 0:
            break
        page.wait_for_timeout(300)
    with contextlib.suppress(Exception):
        page.wait_for_load_state("networkidle", timeout=10_000)
    page.wait_for_timeout(500)


def shrink(path: Path, max_width: int = 1100) -> None:
    """Downscale + palette-quantize a PNG in place (modest files for the README)."""
    from PIL import Image

    from core.common import atomic_path

    with Image.open(path) as im:
        im = im.convert("RGB")
        if im.width > max_width:
            im = im.resize((max_width, round(im.height * max_width / im.width)), Image.Resampling.LANCZOS)
        im = im.quantize(colors=256, method=Image.Quantize.MEDIANCUT)
        with atomic_path(path) as tmp:
            im.save(tmp, format="PNG", optimize=True)


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--corpus", type=Path, required=True)
    p.add_argument("--runs", type=Path)
    p.add_argument("--results", type=Path)
    p.add_argument("--db", type=Path)
    p.add_argument("--cache", type=Path)
    p.add_argument("--item", help="item id for the Item page (default: the first fake)")
    p.add_argument("--reviewer", default="demo", help="name typed into the Review / Blind study pages")
    p.add_argument("--upload", type=Path, help="a file to check on the Check a file page (default: the item)")
    p.add_argument("--width", type=int, default=1280)
    p.add_argument("--height", type=int, default=1400)
    p.add_argument("--out", type=Path, default=Path("docs/screenshots"))
    args = p.parse_args(argv)
    from core.processes import raise_on_terminate

    raise_on_terminate()   # a SIGTERM stops the server it started too
    if chromium_path() is None:
        print("no chromium found (make browser)", file=sys.stderr)
        return 2
    from dashboard.data import corpus_file, get_row, load_manifest

    df = load_manifest(args.corpus)
    item = args.item
    if item is None:
        fakes = df[df["label"] == "fake"]
        item = str((fakes if len(fakes) else df)["item_id"].iloc[0])
    upload = args.upload or corpus_file(args.corpus, get_row(df, item)["path"], "item")
    with running_app(args.corpus, args.runs, results=args.results, db=args.db, cache=args.cache) as url:
        shots = capture(url, args.out, item=item, reviewer=args.reviewer, upload=upload if upload.is_file() else None,
                        width=args.width, height=args.height)
    for s in shots:
        shrink(s.path)
        print(f"{s.path}  errors={s.errors}  std={s.pixel_std:.1f}  {s.path.stat().st_size // 1024} KiB")
    return 0 if all(s.errors == 0 for s in shots) else 1


if __name__ == "__main__":
    sys.exit(main())
