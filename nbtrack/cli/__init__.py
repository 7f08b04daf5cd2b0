"""The ``nbtrack`` command line: one module per command, registered in ``main.COMMANDS``."""

from __future__ import annotations

import argparse
from typing import TypeAlias

#: What ``main`` hands each command's ``add_parser(subparsers)``.
Subparsers: TypeAlias = "argparse._SubParsersAction[argparse.ArgumentParser]"
