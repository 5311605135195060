"""How a stage declares its configuration, once: see `base`."""
