"""The `rfm` command line: one sub-command module per job, errors as one line and exit code 2."""

from __future__ import annotations

import argparse
import importlib
import sys
from collections.abc import Sequence

from rfm import __version__
from rfm.errors import RfmError

# Each module has `register(subparsers)`, adding its sub-commands with `set_defaults(func=...)`.
COMMAND_MODULES: tuple[str, ...] = (
    "rfm.cli.data_commands",
    "rfm.cli.athena_commands",
    "rfm.cli.model_commands",
    "rfm.cli.serve_commands",
    "rfm.cli.dashboard_commands",
    "rfm.cli.timeline_commands",
)


def one_line(message: str) -> str:
    """An error message as one printable line: line breaks, terminal escapes and other control
    characters (from a file name, say) shown escaped, never acted on."""
    return "".join(c if c.isprintable() else c.encode("unicode_escape").decode("ascii") for c in message)


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="rfm",
        description="Retail customer segmentation: RFM tables, K-Means segments, model server.",
    )
    parser.add_argument("--version", action="version", version=f"rfm {__version__}")
    subparsers = parser.add_subparsers(dest="command", metavar="COMMAND", required=True)
    for name in COMMAND_MODULES:
        importlib.import_module(name).register(subparsers)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    """Entry point of the console script; returns the exit code."""
    parser = build_parser()
    args, extra = parser.parse_known_args(argv)
    if extra and not getattr(args, "passes_unknown_args", False):
        parser.error(f"unrecognized arguments: {' '.join(extra)}")
    args.streamlit_args = extra
    try:
        return int(args.func(args) or 0)
    except RfmError as exc:
        print(f"rfm {args.command}: error: {one_line(str(exc))}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        print(f"rfm {args.command}: interrupted", file=sys.stderr)
        return 130
    except BrokenPipeError:
        return 0
    except OSError as exc:  # a file the system refused that no layer below named: still one line, exit 2
        where = f"{exc.filename}: " if exc.filename else ""
        print(f"rfm {args.command}: error: {one_line(f'{where}{exc.strerror or type(exc).__name__}')}",
              file=sys.stderr)
        return 2
