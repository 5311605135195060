"""Verifiers, selection for RSFT and pair construction for DPO."""
