"""Open the Streamlit review app on a corpus (and detector runs), bound to 127.0.0.1 by default.

  faceforge dashboard --corpus out/demo/corpus --runs out/demo/detect

Runs `streamlit run dashboard/app.py` headless with the roots passed after `--`; open the printed
URL in a browser. SIGINT/SIGTERM/SIGHUP are forwarded to the server and waited for.
Use --host 0.0.0.0 only on a trusted network: the app has no login.
"""

from __future__ import annotations

import sys
from pathlib import Path

APP = Path(__file__).resolve().parents[1] / "app.py"


def add_arguments(parser) -> None:
    parser.add_argument("--corpus", required=True, type=Path, help="corpus folder (with manifest.parquet)")
    parser.add_argument("--runs", type=Path, help="a detector run folder, or a folder of runs")
    parser.add_argument("--results", type=Path, help="studies results folder (detect_*.json); "
                                                     "default benchmarks/results")
    parser.add_argument("--db", type=Path, help="review labels database (default CORPUS/review.sqlite)")
    parser.add_argument("--cache", type=Path, help="thumbnail/playback cache (default ~/.cache/faceforge/dashboard)")
    parser.add_argument("--host", default="127.0.0.1", help="address to bind (default 127.0.0.1)")
    parser.add_argument("--port", type=int, default=8501, help="port (default 8501)")
    parser.add_argument("--max-upload-mb", type=int, default=50, help="'Check a file' upload limit (MB)")
    parser.add_argument("--print-command", action="store_true", help="print the streamlit command and exit")


def build_command(args) -> list[str]:
    """The `streamlit run` command line for these arguments (roots validated, made absolute)."""
    from core.common import FaceforgeError, require_file

    require_file(Path(args.corpus) / "manifest.parquet", "corpus manifest")
    if args.runs is not None and not Path(args.runs).is_dir():
        raise FaceforgeError(f"runs folder not found: {args.runs}")
    if not 0 < args.port < 65536:
        raise FaceforgeError(f"port must be in 1..65535, not {args.port}")
    if args.max_upload_mb < 1:
        raise FaceforgeError("--max-upload-mb must be at least 1")
    cmd = [sys.executable, "-m", "streamlit", "run", str(APP),
           "--server.headless", "true",
           "--server.address", args.host,
           "--server.port", str(args.port),
           "--server.maxUploadSize", str(args.max_upload_mb),
           "--server.fileWatcherType", "none",
           "--server.runOnSave", "false",
           "--browser.gatherUsageStats", "false",
           "--client.toolbarMode", "viewer",
           "--", "--corpus", str(Path(args.corpus).resolve()),
           "--max-upload-mb", str(args.max_upload_mb)]
    for flag in ("runs", "results", "db", "cache"):
        value = getattr(args, flag, None)
        if value is not None:
            cmd += [f"--{flag}", str(Path(value).resolve())]
    return cmd


def run(args) -> int:
    cmd = build_command(args)
    if args.print_command:
        print(" ".join(cmd))
        return 0
    from core.processes import run_forwarding

    print(f"faceforge dashboard: http://{args.host}:{args.port}  (Ctrl-C to stop)", file=sys.stderr)
    return run_forwarding(cmd)  # SIGINT/SIGTERM/SIGHUP go to the server, which we wait for: no orphan
