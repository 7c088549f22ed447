"""The ``faceforge`` command line: a thin dispatcher over the four packages.

Each command lives in its own module ``<package>.commands.<name>`` with two functions:
``add_arguments(parser)`` and ``run(args) -> int | None``. Command modules import nothing heavy
at module level, so ``faceforge --help`` stays instant.
"""

from __future__ import annotations

import argparse
import importlib
import logging
import sys

# group -> [(command, module, one-line help)]; order is the data flow.
COMMANDS: dict[str, list[tuple[str, str, str]]] = {
    "forge": [
        ("prepare", "forge.commands.prepare", "detect faces + landmarks in videos/images and build the training cache"),
        ("train", "forge.commands.train", "meta-learn the talking-head GAN on a prepared cache (resumable)"),
        ("fit", "forge.commands.fit", "fit the generator to a new person from 1..32 images (FF or FT)"),
        ("animate", "forge.commands.animate", "reenact a portrait or fitted person from a driver video"),
        ("eval", "forge.commands.eval", "the paper's evaluation on held-out identities (SSIM, PSNR, CSIM, ...)"),
        ("export", "forge.commands.export", "export a small inference checkpoint (G + E + P, fp16)"),
        ("corpus", "forge.commands.corpus", "render a labelled benchmark corpus of real and fake talking heads"),
    ],
    "detect": [
        ("list", "detect.commands.list", "list the registered detectors"),
        ("train", "detect.commands.train", "train a deepfake detector on a corpus"),
        ("train-sbi", "detect.commands.train_sbi", "train a frame detector on self-blended fakes of real people"),
        ("score", "detect.commands.score", "score videos/images (default: the shipped detector): P(fake), verdict"),
        ("eval", "detect.commands.eval", "evaluate a detector on a corpus split (AUC, AP, EER, ...)"),
    ],
    "provenance": [
        ("init", "provenance.commands.init", "create a local CA and a C2PA signing certificate"),
        ("sign", "provenance.commands.sign", "watermark and sign a file with a C2PA manifest"),
        ("verify", "provenance.commands.verify", "verify the provenance of files (manifest, watermark, store)"),
    ],
}
SINGLE: list[tuple[str, str, str]] = [
    ("dashboard", "dashboard.commands.serve", "open the Streamlit review app (127.0.0.1 by default)"),
    ("demo", "dashboard.commands.demo", "run the main job end to end on the embedded sample and write a report"),
]


class _Parser(argparse.ArgumentParser):
    def error(self, message: str):  # one clear line, exit 2
        self.exit(2, f"{self.prog}: error: {message}\n")


def _add_command(sub, name: str, module: str, help_: str) -> None:
    try:
        mod = importlib.import_module(module)
    except ModuleNotFoundError as e:
        if e.name and module.startswith(e.name):
            return  # command not built yet in this checkout
        raise
    p = sub.add_parser(name, help=help_, description=(mod.__doc__ or help_).strip(),
                       formatter_class=argparse.RawDescriptionHelpFormatter)
    mod.add_arguments(p)
    p.set_defaults(_run=mod.run)


def build_parser() -> argparse.ArgumentParser:
    parser = _Parser(prog="faceforge", description=(
        "faceforge: few-shot talking-head GAN, benchmark corpora, deepfake detectors, provenance.\n"
        "Data flows: forge prepare -> forge train/fit/animate/corpus -> detect / provenance -> dashboard."),
        formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("-v", "--verbose", action="store_true", help="log debug messages")
    top = parser.add_subparsers(dest="group", metavar="COMMAND", parser_class=_Parser)
    for group, commands in COMMANDS.items():
        gp = top.add_parser(group, help=f"{group} commands")
        gsub = gp.add_subparsers(dest="command", metavar="SUBCOMMAND", parser_class=_Parser)
        for name, module, help_ in commands:
            _add_command(gsub, name, module, help_)
        gp.set_defaults(_group_parser=gp)
    for name, module, help_ in SINGLE:
        _add_command(top, name, module, help_)
    return parser


def main(argv: list[str] | None = None) -> int:
    from core.common import FaceforgeError
    from core.processes import Terminated, raise_on_terminate

    raise_on_terminate()  # SIGTERM/SIGHUP unwind like Ctrl-C: children are stopped, never orphaned
    parser = build_parser()
    args = parser.parse_args(argv)
    logging.basicConfig(level=logging.DEBUG if args.verbose else logging.INFO,
                        format="%(asctime)s %(levelname)s %(name)s: %(message)s", stream=sys.stderr)
    run = getattr(args, "_run", None)
    if run is None:
        (getattr(args, "_group_parser", None) or parser).print_help()
        return 2
    try:
        return int(run(args) or 0)
    except FaceforgeError as e:
        print(f"faceforge: error: {e}", file=sys.stderr)
        return 2
    except KeyboardInterrupt as e:
        print("faceforge: interrupted (re-run the same command to resume)", file=sys.stderr)
        return 128 + e.signum if isinstance(e, Terminated) else 130


if __name__ == "__main__":
    sys.exit(main())
