"""Checkpoints and recovery: ``files`` (the format on disk), ``checkpointer`` (writing while
running), ``pickling`` (the stored graph for getOrCreate), ``recovery`` (getOrCreate and resume).

See ``StreamingContext.checkpoint``, ``StreamingContext.get_or_create`` and
``StreamingContext.resume`` for the user-facing side.
"""

from .files import CheckpointError, checkpoint_times, load_newest

__all__ = ["CheckpointError", "checkpoint_times", "load_newest"]
