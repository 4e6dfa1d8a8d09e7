"""data stage of persona-testbed."""
