"""``python -m workers.ml <command>``: the ML core's command line, usable without Django.

Each command lives in its own module exposing ``add_arguments(parser)`` and ``run(args) -> int``;
modules are imported only when their command runs, so ``--help`` stays fast.
"""

from __future__ import annotations

import argparse
import importlib
import sys

COMMANDS: dict[str, tuple[str, str]] = {
    "convert-hf": ("workers.ml.cli_convert", "Convert a Hugging Face ViTMAEForPreTraining folder to our checkpoint"),
    "errormap": ("workers.ml.cli_errormap", "Compute error maps and suggested boxes for images"),
    "bench-errormap": ("workers.ml.bench_errormap", "Benchmark our error maps against the reference procedure"),
    "bench-embed": ("workers.ml.bench_embed", "What the multi-scale embedding costs against one scale"),
    "pretrain": ("workers.ml.cli_pretrain", "Self-supervised MAE pretraining on a folder or list of images"),
    "evaluate-localization": ("workers.ml.cli_localization", "Zero-shot localization harness (FracAtlas layout)"),
    "simulate-al": ("workers.ml.cli_simulate_al", "Oracle active-learning simulation against random sampling"),
    "bench-al": ("workers.ml.bench_al", "Scale benchmark: scoring + k-center selection on many embeddings"),
}


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m workers.ml", description=__doc__.splitlines()[0])
    sub = parser.add_subparsers(dest="command", metavar="COMMAND")
    argv = sys.argv[1:] if argv is None else argv
    wanted = argv[0] if argv and argv[0] in COMMANDS else None
    modules = {}
    for name, (module_name, help_text) in COMMANDS.items():
        p = sub.add_parser(name, help=help_text, description=help_text)
        if name == wanted:
            module = importlib.import_module(module_name)
            module.add_arguments(p)
            modules[name] = module
    args = parser.parse_args(argv)
    if args.command is None:
        parser.print_help()
        return 2
    return int(modules[args.command].run(args) or 0)


if __name__ == "__main__":
    sys.exit(main())
