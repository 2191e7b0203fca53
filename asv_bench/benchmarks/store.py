"""The shared-memory block store: putting a W2/W3 input partition (500k pairs, 8 MB).

``fresh`` writes every block to a new file (spare files off), ``spares``
writes into the file of a released block (``runnel.storage.spares``);
``put_many`` writes W3's two 8 MB partitions of one batch.
"""

import numpy as np

from . import pairs


class PutBlock:
    params = [["fresh", "spares"]]
    param_names = ["files"]

    def setup(self, files):
        from runnel.batch import Batch
        from runnel.storage.store import SharedMemoryStore
        k, v = pairs()
        half = len(k) // 2
        self.parts = [Batch({"key": k[a:a + half], "value": v[a:a + half]}, ("key", "value")) for a in (0, half)]
        self.store = SharedMemoryStore(spare_bytes=0 if files == "fresh" else 256 << 20)
        self.store.release([self.store.put(self.parts[0])])

    def teardown(self, files):
        self.store.close()

    def time_put_release(self, files):
        self.store.release([self.store.put(self.parts[0])])

    def time_put_many_release(self, files):
        self.store.release(self.store.put_many(self.parts))

    def track_spare_bytes(self, files):
        return 0 if self.store.spares is None else int(np.int64(self.store.spares.nbytes))
