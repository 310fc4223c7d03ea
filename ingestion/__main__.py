"""`python -m ingestion`: the same as `tenantry ingest`, for tests and local runs."""

from __future__ import annotations

import argparse
import sys

from ingestion import cli

parser = argparse.ArgumentParser(prog="python -m ingestion", description=cli.__doc__)
cli.add_arguments(parser)
sys.exit(cli.run(parser.parse_args()))
