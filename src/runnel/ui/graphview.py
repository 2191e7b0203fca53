"""The DStream graph drawn as SVG by the server (what Spark's DAG visualisation shows for a job).

Streams are laid out top to bottom by depth (an input at the top, a stream
one row below its deepest parent), in definition order within a row; an
arrow goes from each parent to each child. Every stream is a ``<g
class="node">`` carrying ``data-name`` and ``data-kind``, every arrow a
``<line class="edge">`` carrying ``data-from`` and ``data-to``, so a test
(or a curious user) can read the graph back.
"""

from __future__ import annotations

from html import escape

from ..graph import StreamNode

BOX_W, BOX_H, STEP_X, STEP_Y, PAD = 250, 40, 270, 72, 12


def layout(nodes: list[StreamNode]) -> dict[str, tuple[int, int]]:
    """(row, column) of every stream: row = its depth below the inputs, column = order within the row."""
    depth: dict[str, int] = {}
    for n in nodes:               # definition order: parents come first
        depth[n.name] = 1 + max((depth.get(p, 0) for p in n.parents), default=-1)
    cols: dict[int, int] = {}
    out = {}
    for n in nodes:
        row = depth[n.name]
        out[n.name] = (row, cols.get(row, 0))
        cols[row] = cols.get(row, 0) + 1
    return out


def _details(n: StreamNode) -> str:
    bits = [n.kind]
    if n.window_ms is not None:
        bits.append(f"window {n.window_ms / 1000:g} s")
    if n.slide_ms:
        bits.append(f"slide {n.slide_ms / 1000:g} s")
    return ", ".join(bits)


def dag(nodes: list[StreamNode]) -> str:
    """The graph as one SVG drawing (an empty note when there is no stream)."""
    if not nodes:
        return '<p class="note">no streams</p>'
    at = layout(nodes)
    rows = 1 + max(r for r, _ in at.values())
    cols = 1 + max(c for _, c in at.values())
    width, height = 2 * PAD + (cols - 1) * STEP_X + BOX_W, 2 * PAD + (rows - 1) * STEP_Y + BOX_H

    def corner(name: str) -> tuple[int, int]:
        r, c = at[name]
        return PAD + c * STEP_X, PAD + r * STEP_Y

    parts = [f'<svg class="dag" width="{width}" height="{height}" viewBox="0 0 {width} {height}" role="img" '
             f'aria-label="DStream graph"><defs><marker id="arrow" viewBox="0 0 10 10" refX="10" refY="5" '
             f'markerWidth="7" markerHeight="7" orient="auto-start-reverse"><path d="M0,0 L10,5 L0,10 z"/>'
             f'</marker></defs>']
    for n in nodes:
        x2, y2 = corner(n.name)
        for p in n.parents:
            x1, y1 = corner(p)
            parts.append(f'<line class="edge" data-from="{escape(p)}" data-to="{escape(n.name)}" '
                         f'x1="{x1 + BOX_W // 2}" y1="{y1 + BOX_H}" x2="{x2 + BOX_W // 2}" y2="{y2}" '
                         f'marker-end="url(#arrow)"/>')
    for n in nodes:
        x, y = corner(n.name)
        role = ("input" if n.input_id is not None else "output" if n.output_id is not None
                else "stateful" if n.stateful else "op")
        tip = f"{n.name}: {_details(n)}" + (f"; reads {', '.join(n.parents)}" if n.parents else "")
        parts.append(f'<g class="node {role}" data-name="{escape(n.name)}" data-kind="{escape(n.kind)}">'
                     f"<title>{escape(tip)}</title>"
                     f'<rect x="{x}" y="{y}" width="{BOX_W}" height="{BOX_H}" rx="5"/>'
                     f'<text x="{x + BOX_W // 2}" y="{y + 16}" text-anchor="middle" class="name">'
                     f"{escape(n.name)}</text>"
                     f'<text x="{x + BOX_W // 2}" y="{y + 31}" text-anchor="middle">{escape(_details(n))}</text></g>')
    return "".join(parts) + "</svg>"
