"""``ibtheory check-estimator MODULE:FUNC``: run the conformance properties against an MI estimator.

FUNC is any callable ``FUNC(x (n, d_x), y (n, d_y)) -> float`` bits (attribute path allowed, e.g.
``mypkg.mi:Estimators.ksg``), with optional capability attributes ``x_kind``, ``y_kind``, ``invariances``
(see ``ibtheory.testing.tags``).  Prints one line per check and a markdown table; exit code 0 when no check failed
unexpectedly, 1 otherwise.
"""

from __future__ import annotations

import argparse
import importlib
import json
from pathlib import Path

__all__ = ["register", "run", "load_callable"]


def load_callable(spec: str):
    """Import ``MODULE:ATTR[.ATTR...]`` and return the object; ``ValueError`` for a malformed or missing spec."""
    module_name, sep, attr = spec.partition(":")
    if not sep or not module_name or not attr:
        raise ValueError(f"estimator must look like MODULE:FUNC, got {spec!r}")
    try:
        obj = importlib.import_module(module_name)
    except ImportError as exc:
        raise ValueError(f"cannot import module {module_name!r}: {exc}") from None
    for part in attr.split("."):
        if not hasattr(obj, part):
            raise ValueError(f"{spec!r}: {getattr(obj, '__name__', obj)!r} has no attribute {part!r}")
        obj = getattr(obj, part)
    if not callable(obj):
        raise ValueError(f"{spec!r} is not callable")
    return obj


def register(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser("check-estimator", help="run the property-based conformance suite against an MI estimator",
                       description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("estimator", metavar="MODULE:FUNC", help="the estimator, e.g. ibtheory.estimators.ksg:ksg")
    p.add_argument("--properties", default=None,
                   help="comma-separated properties to run (default: all; see ibtheory.testing.PROPERTIES)")
    p.add_argument("--max-examples", type=int, default=10, help="hypothesis examples per check (default 10)")
    p.add_argument("--expect-fail", action="append", default=[], metavar="PROPERTY=REASON",
                   help="mark a property (or full check name) as an expected failure; repeatable")
    p.add_argument("--no-shrink", action="store_true", help="do not shrink counterexamples (faster)")
    p.add_argument("--out", default=None, help="also write the report: .json (records) or .md (table)")
    p.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    from .. import _validate
    from ..testing import check_estimator

    if args.out:
        _validate.writable_file(args.out, "--out")
    estimator = load_callable(args.estimator)
    expected = {}
    for item in args.expect_fail:
        key, sep, reason = item.partition("=")
        if not sep or not key:
            raise ValueError(f"--expect-fail must look like PROPERTY=REASON, got {item!r}")
        expected[key.strip()] = reason.strip()
    props = None if args.properties is None else [p.strip() for p in args.properties.split(",") if p.strip()]
    report = check_estimator(estimator, properties=props, max_examples=args.max_examples,
                             expected_failed_checks=expected, on_fail=None, shrink=not args.no_shrink)
    print(report)
    print()
    print(report.to_markdown())
    if args.out:
        out = Path(args.out)
        if out.suffix == ".json":
            out.write_text(json.dumps(report.to_records(), indent=1, default=str))
        else:
            out.write_text(f"# Conformance report: {report.estimator}\n\n{report.to_markdown()}\n")
        print(f"wrote {out}")
    return 1 if report.failed else 0
