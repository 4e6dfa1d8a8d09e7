"""feedback stage of persona-testbed."""
