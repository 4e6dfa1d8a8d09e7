"""census stage of persona-testbed."""
