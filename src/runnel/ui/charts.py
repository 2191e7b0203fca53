"""Small SVG charts drawn by the server: a timeline and a histogram.

No JavaScript chart library and nothing from the network: the browser may
have no internet, and the charts must render in a headless browser and a
notebook alike. Every data point of a timeline is a ``<circle
class="point">`` carrying ``data-x`` (batch time, ms) and ``data-y``, so a
test (or a curious user) can read the figures back.
"""

from __future__ import annotations

from html import escape

W, H = 420, 120          # drawing size in px
PAD_L, PAD_B, PAD_T, PAD_R = 72, 18, 14, 8


def _nice_max(v: float) -> float:
    if v <= 0:
        return 1.0
    mag = 10 ** len(str(int(v))) / 10 if v >= 1 else 1.0
    for m in (1, 2, 2.5, 5, 10):
        if v <= m * mag:
            return m * mag
    return 10 * mag


def _fmt(v: float, unit: str) -> str:
    return (f"{v:,.0f}" if abs(v) >= 10 or v == int(v) else f"{v:.2g}") + (f" {unit}" if unit else "")


def timeline(points: list[tuple[int, float]], unit: str, label: str, threshold: float | None = None,
             threshold_label: str = "") -> str:
    """A line over batch times; ``threshold`` draws a dashed horizontal line (the batch interval)."""
    pw, ph = W - PAD_L - PAD_R, H - PAD_T - PAD_B
    ymax = _nice_max(max([y for _, y in points] + [threshold or 0, 0]))
    parts = [f'<svg class="chart timeline" data-label="{escape(label)}" width="{W}" height="{H}" '
             f'viewBox="0 0 {W} {H}" role="img" aria-label="{escape(label)} over time">',
             f'<line class="axis" x1="{PAD_L}" y1="{PAD_T + ph}" x2="{PAD_L + pw}" y2="{PAD_T + ph}"/>',
             f'<line class="axis" x1="{PAD_L}" y1="{PAD_T}" x2="{PAD_L}" y2="{PAD_T + ph}"/>',
             f'<text x="{PAD_L - 4}" y="{PAD_T + 8}" text-anchor="end">{escape(_fmt(ymax, unit))}</text>',
             f'<text x="{PAD_L - 4}" y="{PAD_T + ph}" text-anchor="end">0</text>']
    if not points:
        parts.append(f'<text x="{PAD_L + pw / 2}" y="{PAD_T + ph / 2}" text-anchor="middle">no batches yet</text>')
        return "".join(parts) + "</svg>"
    x0, x1 = points[0][0], points[-1][0]
    span = (x1 - x0) or 1

    def xy(x: float, y: float) -> tuple[float, float]:
        px = PAD_L + (pw * (x - x0) / span if len(points) > 1 else pw / 2)
        return round(px, 1), round(PAD_T + ph - ph * y / ymax, 1)

    if threshold is not None:
        _, ty = xy(x0, threshold)
        parts.append(f'<line class="threshold" x1="{PAD_L}" y1="{ty}" x2="{PAD_L + pw}" y2="{ty}"/>'
                     f'<text class="threshold" x="{PAD_L + pw}" y="{ty - 3}" text-anchor="end">'
                     f'{escape(threshold_label)}</text>')
    coords = [xy(x, y) for x, y in points]
    parts.append('<polyline class="line" points="' + " ".join(f"{a},{b}" for a, b in coords) + '"/>')
    for (x, y), (a, b) in zip(points, coords):
        parts.append(f'<circle class="point" cx="{a}" cy="{b}" r="2" data-x="{x}" data-y="{y:g}">'
                     f'<title>{x} ms: {escape(_fmt(y, unit))}</title></circle>')
    return "".join(parts) + "</svg>"


def histogram(values: list[float], unit: str, label: str, bins: int = 10) -> str:
    """Counts of ``values`` in ``bins`` equal bins from 0 to their maximum."""
    pw, ph = W // 2 - PAD_L - PAD_R, H - PAD_T - PAD_B
    w = W // 2
    parts = [f'<svg class="chart histogram" data-label="{escape(label)}" width="{w}" height="{H}" '
             f'viewBox="0 0 {w} {H}" role="img" aria-label="histogram of {escape(label)}">',
             f'<line class="axis" x1="{PAD_L}" y1="{PAD_T + ph}" x2="{PAD_L + pw}" y2="{PAD_T + ph}"/>']
    if not values:
        return "".join(parts) + "</svg>"
    top = _nice_max(max(values))
    counts = [0] * bins
    for v in values:
        counts[min(bins - 1, int(bins * v / top))] += 1
    cmax = max(counts)
    bw = pw / bins
    for i, c in enumerate(counts):
        bh = ph * c / cmax
        parts.append(f'<rect class="bar" x="{round(PAD_L + i * bw, 1)}" y="{round(PAD_T + ph - bh, 1)}" '
                     f'width="{round(bw - 1, 1)}" height="{round(bh, 1)}" data-count="{c}">'
                     f'<title>{escape(_fmt(top * i / bins, unit))} to {escape(_fmt(top * (i + 1) / bins, unit))}: '
                     f'{c} batches</title></rect>')
    parts.append(f'<text x="{PAD_L}" y="{H - 4}">0</text>'
                 f'<text x="{PAD_L + pw}" y="{H - 4}" text-anchor="end">{escape(_fmt(top, unit))}</text>'
                 f'<text x="{PAD_L - 4}" y="{PAD_T + 8}" text-anchor="end">{cmax}</text>')
    return "".join(parts) + "</svg>"
