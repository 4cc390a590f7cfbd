"""The `ganforge` command. Each subcommand is one module in this package exposing

    NAME: str                      # the subcommand's name
    HELP: str                      # one line for `ganforge --help`
    def add_arguments(parser)      # argparse flags
    def run(args) -> int | None    # does the work; raises UsageError for user mistakes

The single top-level handler below turns a UsageError into one line on stderr and exit code 2.
"""

from __future__ import annotations

import argparse
import importlib
import os
import sys

from ganforge.errors import UsageError

# Subcommand modules, in the order `--help` lists them. Every one must import: a missing module is a bug.
SUBCOMMANDS = [
    "generate",
    "mix",
    "video",
    "project",
    "attribute",
    "edit",
    "info",
    "dataset",
    "train",
    "metrics",
    "convert",
    "export_onnx",
]


class _Parser(argparse.ArgumentParser):
    def error(self, message):  # argparse's own mistakes: one line, exit 2
        raise UsageError(f"{message} (see `{self.prog} --help`)")


def _load_modules():
    return [importlib.import_module(f"ganforge.cli.{name}") for name in SUBCOMMANDS]


def build_parser() -> argparse.ArgumentParser:
    from ganforge import __version__

    parser = _Parser(prog="ganforge", description="Train, sample, convert and evaluate StyleGAN2 networks.")
    parser.add_argument("--version", action="version", version=f"ganforge {__version__}")
    sub = parser.add_subparsers(dest="command", metavar="COMMAND", parser_class=_Parser)
    for mod in _load_modules():
        p = sub.add_parser(mod.NAME, help=mod.HELP, description=mod.HELP)
        mod.add_arguments(p)
        p.set_defaults(_run=mod.run)
    return parser


def main(argv=None) -> int:
    argv = sys.argv[1:] if argv is None else argv
    try:
        parser = build_parser()
        args = parser.parse_args(argv)
        if not getattr(args, "_run", None):
            parser.print_help()
            return 2
        if hasattr(args, "threads") and args.command != "train":  # train applies its own (per process)
            from ganforge.cli.common import apply_threads

            apply_threads(args.threads)
        rc = args._run(args)
        return int(rc or 0)
    except UsageError as e:
        print(f"error: {e}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        print("interrupted", file=sys.stderr)
        return 130
    except BrokenPipeError:  # output piped into `head` and the like: stop quietly
        try:
            sys.stdout = open(os.devnull, "w")
        except OSError:
            pass
        return 0
