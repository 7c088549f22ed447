"""Benchmark scripts: each writes ``benchmarks/results/<name>.json`` (+ PNG); ``python -m benchmarks.<name>``."""


def run_script(main) -> None:
    """Run a benchmark's ``main()`` as a script: a user error (e.g. no corpus or cache built yet) ends in
    one ``faceforge: error: ...`` line and exit status 2, not a traceback; an int result is the exit status
    (:func:`core.common.run_main`)."""
    from core.common import run_main

    run_main(main, error_status=2)
