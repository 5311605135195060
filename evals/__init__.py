"""Evaluation: pass@k runs, their statistics, the promotion gate and the report."""
