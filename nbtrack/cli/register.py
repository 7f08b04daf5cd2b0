"""``nbtrack register RUN_ID --name NAME``: a run's model into MLflow's Model Registry.

Prints ``models:/NAME/VERSION`` (what ``nbtrack serve`` and ``mlflow.pyfunc.load_model``
take). Exit codes: 0 registered (or already that version), 2 bad input or a name
clash, 3 no such run or model, 4 store unavailable.
"""

from __future__ import annotations

import argparse
import sys

from nbtrack.cli import Subparsers
from nbtrack.cli.runs import add_store_arguments


def add_parser(subparsers: Subparsers) -> argparse.ArgumentParser:
    parser: argparse.ArgumentParser = subparsers.add_parser(
        "register",
        help="register a run's model in MLflow's Model Registry",
        description="Register the model RUN_ID logged (a fitted model left in a top-level variable "
        "at the run's end, or given to nbtrack.log_model) as a new version of the registered "
        "model NAME, and print its URI models:/NAME/VERSION. Registering the model a version "
        "already holds prints that version.",
    )
    parser.add_argument("run_id", metavar="RUN_ID", help="the run (its first 8 characters are enough)")
    parser.add_argument("--name", required=True, metavar="REGISTERED",
                        help="the registered model to add a version to (created when new)")
    parser.add_argument("--model", metavar="NAME_IN_RUN",
                        help="which of the run's models (its variable name), when it has several")
    parser.add_argument("--alias", metavar="ALIAS",
                        help="point this alias (e.g. champion) at the new version")
    parser.add_argument("--force", action="store_true",
                        help="add to a registered model that holds another notebook's models")
    add_store_arguments(parser)
    return parser


def run(args: argparse.Namespace) -> int:
    from nbtrack.query.lookup import parse_run_id
    from nbtrack.registry.register import check_alias, check_name, register

    parse_run_id(args.run_id)  # typing mistakes answer at once, before MLflow is imported
    check_name(args.name)
    check_alias(args.alias)
    done = register(args.run_id, args.name, model=args.model, alias=args.alias, force=args.force,
                    project=args.project, tracking_uri=args.tracking_uri, warn=_warn)
    aliases = f" (alias {', '.join(done.aliases)})" if done.aliases else ""
    what = "registered" if done.created else "already registered"
    print(f"{what}: model {done.model} of run {done.run_id[:8]} is version {done.version} of "
          f"{done.name}{aliases}", file=sys.stderr)
    print(done.uri)
    return 0


def _warn(message: str) -> None:
    print(f"nbtrack register: {message}", file=sys.stderr)
