"""Orchestration: run directory and lock, config, engine (stages, skip / resume), session, status, run view.

The top library layer: it imports the stages, ``report`` and the foundation; only ``cli`` imports it.
"""
