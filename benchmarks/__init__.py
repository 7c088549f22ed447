"""Benchmark scripts: each writes ``benchmarks/results/<name>.json`` (+ PNG); ``python -m benchmarks.<name>``."""


def run_script(main) -> None:
    """Run a benchmark's ``main()`` as a script: a user error (e.g. no corpus or cache built yet) ends in
    one ``faceforge: error: ...`` line and exit status 2, not a traceback; an int result is the exit status."""
    import sys

    from core.common import FaceforgeError

    try:
        rc = main()
    except FaceforgeError as e:
        print(f"faceforge: error: {e}", file=sys.stderr)
        sys.exit(2)
    sys.exit(rc if isinstance(rc, int) else 0)
