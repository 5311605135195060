"""Prefect flows and the `distillery` command line: thin wiring over plain functions."""

from distillery.flows.runtime import prepare_environment

# Prefect reads DO_NOT_TRACK as it is imported (and prints a telemetry notice without it):
# set it here, before any module of this package imports Prefect.
prepare_environment()
