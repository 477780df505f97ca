"""`promptembedder`: one subcommand per module in app/commands, each with a register(subparsers).

Heavy imports happen inside the handlers, so `--help` answers at once.
"""
from __future__ import annotations

import argparse
import importlib
import sys

from app.services.errors import USER_ERRORS

COMMAND_MODULES = ["models", "encode", "index", "evaluate", "train", "bench", "serve"]


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="promptembedder",
        description="Index, search and retrain with PromptEmbedder, a dual-LLM soft-prompting text embedder.",
        epilog="State lives under $PROMPTEMBEDDER_HOME (default: the user data directory). "
        "Run `promptembedder COMMAND --help` for a command's options.",
    )
    commands = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")
    for name in COMMAND_MODULES:
        importlib.import_module(f"app.commands.{name}").register(commands)
    return parser


def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    try:
        return args.handler(args) or 0
    except KeyboardInterrupt:
        print("interrupted; nothing already stored was lost", file=sys.stderr)
        return 130
    except USER_ERRORS as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2


if __name__ == "__main__":
    sys.exit(main())
