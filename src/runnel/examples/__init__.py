"""Runnable examples: ``python -m runnel.examples.network_wordcount``."""
