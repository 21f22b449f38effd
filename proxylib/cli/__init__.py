"""The ``proxylib`` command line (also ``python -m proxylib``).

Subcommands: ``bench`` (the default), ``ls``, ``slice``, ``index``. Expected
errors print one line and exit with status 1; usage errors exit with 2.
"""

from __future__ import annotations

import argparse
import os
import sys
from typing import List, Optional

from .. import __version__
from ..errors import ProxyError
from . import bench, index, listing, slicing


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="proxylib",
        description="Lazy array proxies for NIfTI volumes: benchmark read strategies, "
                    "list, slice and index files. With no subcommand, runs 'bench' on a "
                    "generated default volume.")
    parser.add_argument("--version", action="version", version=f"proxylib {__version__}")
    commands = parser.add_subparsers(dest="command", metavar="COMMAND")
    for module in (bench, listing, slicing, index):
        module.add_parser(commands)
    return parser


COMMANDS = ("bench", "ls", "slice", "index")


def main(argv: Optional[List[str]] = None) -> int:
    argv = list(sys.argv[1:] if argv is None else argv)
    parser = build_parser()
    if not argv or argv[0] not in COMMANDS + ("-h", "--help", "--version"):
        if argv and not _bench_target(argv[0]):
            print(f"proxylib: {argv[0]!r} is an unknown command or a missing file; commands "
                  f"are {', '.join(COMMANDS)} (with no command, 'bench [FILE]' runs); see "
                  "proxylib --help", file=sys.stderr)
            return 2
        argv = ["bench"] + argv
    args = parser.parse_args(argv)
    try:
        return args.run(args) or 0
    except BrokenPipeError:  # output piped into head & co.
        sys.stderr.close()
        return 0
    except KeyboardInterrupt:
        print("proxylib: interrupted", file=sys.stderr)
        return 130
    except (ProxyError, OSError, ValueError, IndexError, TypeError, RuntimeError) as err:
        print(f"proxylib {args.command}: error: {err}", file=sys.stderr)
        return 1


def _bench_target(first: str) -> bool:
    """True when ``first`` can start an implicit ``bench`` command line: an option,
    an existing file, or a URL."""
    return first.startswith("-") or "://" in first or os.path.exists(first)
