"""persona-testbed: the PERSONA testbed for pluralistic alignment (arXiv 2407.17387)."""

__version__ = "0.1.0"
