"""Sampling backends behind one protocol, model resolution and caching, inference strategies."""
