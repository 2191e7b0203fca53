"""Block storage: Arrow IPC encoding of batches (:mod:`.ipc`) and block stores (:mod:`.store`)."""

from runnel.storage.ipc import batch_to_bytes, read_batch, write_batch
from runnel.storage.store import (BlockRef, BlockStore, DiskStore, MemoryStore, SharedMemoryStore,
                                  shm_directory)

__all__ = ["BlockRef", "BlockStore", "MemoryStore", "SharedMemoryStore", "DiskStore", "shm_directory",
           "write_batch", "batch_to_bytes", "read_batch"]
