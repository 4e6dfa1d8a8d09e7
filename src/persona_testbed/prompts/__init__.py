"""prompts stage of persona-testbed."""
