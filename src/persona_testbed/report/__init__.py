"""report stage of persona-testbed."""
