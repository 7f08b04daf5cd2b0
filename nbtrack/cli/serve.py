"""``nbtrack serve MODEL_URI``: MLflow's scoring server for a registered or a run's model.

Runs in the current environment (``--env-manager local``: no conda or virtualenv is
built), prints the URL, answers ``POST /invocations`` until Ctrl-C or SIGTERM.
Exit codes: 0 stopped by Ctrl-C/SIGTERM, 2 bad input, 3 no such model, version,
alias or run, 4 store unavailable, 6 the port is in use, 1 the server failed.
"""

from __future__ import annotations

import argparse
import sys

from nbtrack.cli import Subparsers
from nbtrack.cli.runs import add_store_arguments

#: MLflow's own default for `mlflow models serve`.
DEFAULT_PORT = 5000


def add_parser(subparsers: Subparsers) -> argparse.ArgumentParser:
    parser: argparse.ArgumentParser = subparsers.add_parser(
        "serve",
        help="serve a model over REST with MLflow's scoring server",
        description="Start MLflow's own scoring server for MODEL_URI in this Python environment: "
        "models:/NAME/VERSION, models:/NAME@ALIAS (e.g. @champion) or runs:/RUN_ID/MODEL. It "
        "answers POST /invocations with MLflow's JSON formats (dataframe_split, "
        "dataframe_records, instances, inputs) until Ctrl-C or SIGTERM.",
    )
    parser.add_argument("model_uri", metavar="MODEL_URI", help="models:/NAME/VERSION, "
                        "models:/NAME@ALIAS or runs:/RUN_ID/MODEL")
    parser.add_argument("--port", "-p", type=int, default=DEFAULT_PORT,
                        help=f"port to listen on (default {DEFAULT_PORT})")
    parser.add_argument("--host", default="127.0.0.1",
                        help="address to listen on (default 127.0.0.1; 0.0.0.0 for every interface)")
    add_store_arguments(parser)
    return parser


def run(args: argparse.Namespace) -> int:
    from nbtrack.registry.serve import check_port, serve_until_stopped, start

    check_port(args.host, args.port)  # before MLflow is imported
    print(f"loading {args.model_uri} …", file=sys.stderr, flush=True)
    served = start(args.model_uri, host=args.host, port=args.port, project=args.project,
                   tracking_uri=args.tracking_uri, echo=_echo)
    print(f"serving {served.model_uri} at {served.url} (POST {served.invocations}; Ctrl-C stops)",
          flush=True)
    code = serve_until_stopped(served)
    print("stopped", file=sys.stderr, flush=True)
    return code


def _echo(line: str) -> None:
    print(line, file=sys.stderr, flush=True)
