"""bench stage of persona-testbed."""
