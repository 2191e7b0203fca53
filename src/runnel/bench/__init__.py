"""runnel.bench: the benchmark workloads and the side-by-side comparison command.

* :mod:`runnel.bench.workloads` — the workloads of ``ANCHORS.md`` (W1 word
  count, W2 int reduceByKey, W5 tiny batches): their definitions and their
  seeded input data, built once and handed identically to every system.
* :mod:`runnel.bench.compare` — ``python -m runnel.bench.compare``: runs the
  workloads on runnel (``local``, ``local[2]``), pandas, polars and PySpark
  (when installed) in one process and prints records/s and the ratios.

The asv suite (``asv_bench/``) builds its data from the same workloads module.
"""

from .workloads import WORKLOADS, Workload, make_batches

__all__ = ["WORKLOADS", "Workload", "make_batches"]
