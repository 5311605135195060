"""Prefect flows and the `distillery` command line: thin wiring over plain functions."""
