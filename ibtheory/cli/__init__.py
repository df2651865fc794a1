"""The ``ibtheory`` command line.

Each subcommand lives in its own module of this package and exposes ``register(subparsers)``, which adds its parser
and sets ``func`` (a callable taking the parsed arguments and returning an exit code).  Modules are discovered
automatically, so adding a subcommand never edits this file.

Errors never end in a traceback: a ``ValueError`` (bad input) or ``OSError`` (a path that cannot be read or
written; the message names the path) prints one line ``ibtheory COMMAND: error: ...`` and exits with 2.  Every
subcommand checks its output paths before any work.  Ctrl-C (SIGINT) exits with 130 and SIGTERM (``timeout``,
batch schedulers) with 143, after the command has saved what it can (``train`` saves its checkpoint, ``sweep``
keeps every finished task).
"""

from __future__ import annotations

import argparse
import importlib
import os
import pkgutil
import sys

from .. import _signals

__all__ = ["main", "build_parser"]


def build_parser() -> argparse.ArgumentParser:
    """The top-level parser with every discovered subcommand."""
    parser = argparse.ArgumentParser(
        prog="ibtheory",
        description="Test the Information Bottleneck theory of deep learning: exact IB curves, networks in the "
        "information plane, Langevin dynamics and MI-estimator checks. Results are netCDF4 (.nc) and PNG files.",
    )
    sub = parser.add_subparsers(dest="command", metavar="COMMAND")
    for info in sorted(pkgutil.iter_modules(__path__), key=lambda m: m.name):
        if info.name.startswith("_"):
            continue
        module = importlib.import_module(f"{__name__}.{info.name}")
        if hasattr(module, "register"):
            module.register(sub)
    return parser


def main(argv: list[str] | None = None) -> int:
    """Entry point of the console script; returns the process exit code."""
    parser = build_parser()
    args = parser.parse_args(argv)
    if not getattr(args, "func", None):
        parser.print_help()
        return 2
    prefix = f"ibtheory {args.command}"
    try:
        with _signals.terminate_as_interrupt():
            return int(args.func(args) or 0)
    except (ValueError, ImportError) as exc:  # ImportError: an optional dependency (dask, tomli) that is missing
        print(f"{prefix}: error: {exc}", file=sys.stderr)
        return 2
    except OSError as exc:
        print(f"{prefix}: error: {_describe_os_error(exc)}", file=sys.stderr)
        return 2
    except _signals.Terminated:
        print(f"{prefix}: terminated (SIGTERM)", file=sys.stderr)
        return int(_signals.Terminated.exit_code)
    except KeyboardInterrupt:
        print(f"{prefix}: interrupted", file=sys.stderr)
        return 130


def _describe_os_error(exc: OSError) -> str:
    """One line naming the path(s) and the reason: ``'/a/b.nc': Permission denied``."""
    if exc.filename is None:
        return " ".join(str(exc).split()) or type(exc).__name__
    paths = f"{str(exc.filename)!r}" + (f" -> {str(exc.filename2)!r}" if exc.filename2 is not None else "")
    reason = exc.strerror or (os.strerror(exc.errno) if exc.errno else type(exc).__name__)
    return f"{paths}: {reason}"


if __name__ == "__main__":  # pragma: no cover
    sys.exit(main())
