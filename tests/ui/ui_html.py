"""Reading the UI's pages back: batch rows' figures and the charts' points (stdlib html.parser)."""

from __future__ import annotations

from html.parser import HTMLParser


class _Reader(HTMLParser):
    def __init__(self):
        super().__init__()
        self.rows: dict[str, dict[int, dict[str, str]]] = {}    # table id -> batch time -> field -> value
        self.points: dict[str, list[tuple[int, float]]] = {}    # chart label -> [(x, y)]
        self.thresholds: list[str] = []
        self._table = None
        self._row = None
        self._chart = None

    def handle_starttag(self, tag, attrs):
        a = dict(attrs)
        if tag == "table":
            self._table = a.get("id")
        elif tag == "tr" and "data-batch" in a:
            self._row = self.rows.setdefault(self._table, {}).setdefault(int(a["data-batch"]), {})
        elif tag == "td" and self._row is not None and "data-field" in a:
            self._row[a["data-field"]] = a.get("data-value", "")
        elif tag == "svg" and "timeline" in a.get("class", ""):
            self._chart = a["data-label"]
            self.points[self._chart] = []
        elif tag == "circle" and self._chart is not None:
            self.points[self._chart].append((int(a["data-x"]), float(a["data-y"])))
        elif tag == "line" and a.get("class") == "threshold":
            self.thresholds.append(self._chart)

    def handle_endtag(self, tag):
        if tag == "tr":
            self._row = None
        elif tag == "svg":
            self._chart = None


def read_page(html: str) -> _Reader:
    r = _Reader()
    r.feed(html)
    return r


def expected_row(info, status: str = "COMPLETED") -> dict[str, str]:
    """The figures a batch row must show for a listener's BatchInfo."""
    ops = info.output_operation_infos.values()
    return {"batchTime": str(info.batch_time), "status": status, "inputSize": str(info.num_records),
            "schedulingDelay": str(info.scheduling_delay), "processingTime": str(info.processing_delay),
            "totalDelay": str(info.total_delay),
            "numCompletedOutputOps": str(sum(1 for o in ops if o.end_time is not None and not o.failure_reason))}
