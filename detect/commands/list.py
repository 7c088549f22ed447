"""List the registered detectors (name, one-line description)."""

from __future__ import annotations


def add_arguments(parser) -> None:
    parser.add_argument("--json", action="store_true", help="print JSON instead of a table")


def run(args) -> int:
    import json

    from detect.registry import list_detectors

    dets = list_detectors()
    if args.json:
        print(json.dumps(dets, indent=2))
    else:
        width = max(map(len, dets))
        for name, doc in dets.items():
            print(f"{name:<{width}}  {doc}")
    return 0
