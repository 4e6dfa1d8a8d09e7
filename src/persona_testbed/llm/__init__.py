"""llm stage of persona-testbed."""
