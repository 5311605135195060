"""Datasets built from verified rows: selection for RSFT, pairs for DPO, TRL exports."""
