"""The `distillery` command line."""
