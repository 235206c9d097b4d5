"""Small inline-SVG charts for the HTML report: no plotting library, no external files."""

from __future__ import annotations

from html import escape

W, H = 420, 240
LEFT, RIGHT, TOP, BOTTOM = 52, 14, 30, 40
COLORS = ["#1f77b4", "#ff7f0e", "#2ca02c", "#d62728", "#9467bd", "#8c564b"]


def _scale(lo: float, hi: float, size: float, flip: bool) -> tuple[float, float]:
    if hi == lo:
        lo, hi = lo - 1, hi + 1
    k = size / (hi - lo)
    return (k, lo) if not flip else (-k, hi)


def _ticks(lo: float, hi: float, n: int = 4) -> list[float]:
    if hi == lo:
        return [lo]
    return [lo + (hi - lo) * i / n for i in range(n + 1)]


def _frame(title: str, xlabel: str, ylabel: str) -> list[str]:
    return [
        f'<svg xmlns="http://www.w3.org/2000/svg" width="{W}" height="{H}" '
        f'viewBox="0 0 {W} {H}" role="img" aria-label="{escape(title)}" '
        'font-family="sans-serif" font-size="11">',
        f'<text x="{W / 2}" y="16" text-anchor="middle" font-size="13" '
        f'font-weight="bold">{escape(title)}</text>',
        f'<text x="{W / 2}" y="{H - 6}" text-anchor="middle">{escape(xlabel)}</text>',
        f'<text x="12" y="{H / 2}" text-anchor="middle" transform="rotate(-90 12 {H / 2})">'
        f"{escape(ylabel)}</text>",
        f'<line x1="{LEFT}" y1="{H - BOTTOM}" x2="{W - RIGHT}" y2="{H - BOTTOM}" stroke="#333"/>',
        f'<line x1="{LEFT}" y1="{TOP}" x2="{LEFT}" y2="{H - BOTTOM}" stroke="#333"/>',
    ]


def line_chart(
    series: dict[str, list[tuple[float, float]]], title: str, xlabel: str, ylabel: str
) -> str:
    """Lines with markers; x ticks at the data's x values (epochs)."""
    points = [p for pts in series.values() for p in pts]
    out = _frame(title, xlabel, ylabel)
    if not points:
        out.append(f'<text x="{W / 2}" y="{H / 2}" text-anchor="middle">no data</text></svg>')
        return "".join(out)
    xs, ys = [p[0] for p in points], [p[1] for p in points]
    x0, x1, y0, y1 = min(xs), max(xs), min(ys), max(ys)
    pad = (y1 - y0) * 0.1 or abs(y1) * 0.1 or 1.0
    y0, y1 = y0 - pad, y1 + pad
    kx, bx = _scale(x0, x1, W - LEFT - RIGHT - 20, False)
    ky, by = _scale(y0, y1, H - TOP - BOTTOM, True)

    def px(x: float) -> float:
        return LEFT + 10 + (x - bx) * kx

    def py(y: float) -> float:
        return TOP + (y - by) * ky

    for x in sorted(set(xs)):
        out.append(f'<text x="{px(x):.1f}" y="{H - BOTTOM + 14}" text-anchor="middle">{x:g}</text>')
    for y in _ticks(y0, y1):
        out.append(f'<text x="{LEFT - 4}" y="{py(y) + 4:.1f}" text-anchor="end">{y:.3g}</text>')
        out.append(
            f'<line x1="{LEFT}" y1="{py(y):.1f}" x2="{W - RIGHT}" y2="{py(y):.1f}" stroke="#eee"/>'
        )
    for i, (name, pts) in enumerate(series.items()):
        color = COLORS[i % len(COLORS)]
        path = " ".join(f"{px(x):.1f},{py(y):.1f}" for x, y in sorted(pts))
        out.append(f'<polyline points="{path}" fill="none" stroke="{color}" stroke-width="2"/>')
        for x, y in pts:
            out.append(f'<circle cx="{px(x):.1f}" cy="{py(y):.1f}" r="3" fill="{color}"/>')
        out.append(
            f'<text x="{W - RIGHT - 4}" y="{TOP + 12 + 13 * i}" text-anchor="end" '
            f'fill="{color}">{escape(name)}</text>'
        )
    out.append("</svg>")
    return "".join(out)


def bar_chart(bars: dict[str, float], title: str, ylabel: str, fmt: str = "{:.3g}") -> str:
    out = _frame(title, "", ylabel)
    if not bars:
        out.append(f'<text x="{W / 2}" y="{H / 2}" text-anchor="middle">no data</text></svg>')
        return "".join(out)
    top = max(max(bars.values()), 1e-12)
    width = (W - LEFT - RIGHT) / len(bars)
    for i, (label, value) in enumerate(bars.items()):
        h = (H - TOP - BOTTOM) * value / top
        x = LEFT + i * width + width * 0.15
        y = H - BOTTOM - h
        out.append(
            f'<rect x="{x:.1f}" y="{y:.1f}" width="{width * 0.7:.1f}" height="{h:.1f}" '
            f'fill="{COLORS[i % len(COLORS)]}"/>'
        )
        out.append(
            f'<text x="{x + width * 0.35:.1f}" y="{y - 3:.1f}" text-anchor="middle">'
            f"{escape(fmt.format(value))}</text>"
        )
        out.append(
            f'<text x="{x + width * 0.35:.1f}" y="{H - BOTTOM + 14}" '
            f'text-anchor="middle">{escape(label[:14])}</text>'
        )
    out.append("</svg>")
    return "".join(out)
