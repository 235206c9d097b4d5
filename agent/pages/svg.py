"""Small inline-SVG charts for the HTML report: no plotting library, no external files.

Python lays a chart out (coordinates, ticks, colours); templates/chart.html draws it, so every
label goes through the page's escaping."""

from __future__ import annotations

from dataclasses import dataclass, field

W, H = 420, 240
LEFT, RIGHT, TOP, BOTTOM = 52, 14, 30, 40
COLORS = ["#1f77b4", "#ff7f0e", "#2ca02c", "#d62728", "#9467bd", "#8c564b"]


@dataclass(frozen=True)
class Label:
    """A text at (x, y); coordinates already formatted."""

    x: str
    y: str
    text: str


@dataclass(frozen=True)
class Line:
    """One series: its polyline, a marker per point, its legend entry."""

    color: str
    points: str
    markers: list[tuple[str, str]]
    legend: Label


@dataclass(frozen=True)
class Bar:
    color: str
    x: str
    y: str
    width: str
    height: str
    value: Label
    label: Label


@dataclass
class Chart:
    """What templates/chart.html draws: the frame and labels, then lines or bars."""

    title: str
    xlabel: str
    ylabel: str
    empty: bool = False
    xticks: list[Label] = field(default_factory=list)
    yticks: list[tuple[Label, str]] = field(default_factory=list)  # label, grid line's y
    lines: list[Line] = field(default_factory=list)
    bars: list[Bar] = field(default_factory=list)
    width: int = W
    height: int = H
    left: int = LEFT
    right: int = RIGHT
    top: int = TOP
    bottom: int = BOTTOM


def _scale(lo: float, hi: float, size: float, flip: bool) -> tuple[float, float]:
    if hi == lo:
        lo, hi = lo - 1, hi + 1
    k = size / (hi - lo)
    return (k, lo) if not flip else (-k, hi)


def _ticks(lo: float, hi: float, n: int = 4) -> list[float]:
    if hi == lo:
        return [lo]
    return [lo + (hi - lo) * i / n for i in range(n + 1)]


def line_chart(
    series: dict[str, list[tuple[float, float]]], title: str, xlabel: str, ylabel: str
) -> Chart:
    """Lines with markers; x ticks at the data's x values (epochs)."""
    chart = Chart(title, xlabel, ylabel)
    points = [p for pts in series.values() for p in pts]
    if not points:
        chart.empty = True
        return chart
    xs, ys = [p[0] for p in points], [p[1] for p in points]
    x0, x1, y0, y1 = min(xs), max(xs), min(ys), max(ys)
    pad = (y1 - y0) * 0.1 or abs(y1) * 0.1 or 1.0
    y0, y1 = y0 - pad, y1 + pad
    kx, bx = _scale(x0, x1, W - LEFT - RIGHT - 20, False)
    ky, by = _scale(y0, y1, H - TOP - BOTTOM, True)

    def px(x: float) -> str:
        return f"{LEFT + 10 + (x - bx) * kx:.1f}"

    def py(y: float) -> str:
        return f"{TOP + (y - by) * ky:.1f}"

    chart.xticks = [Label(px(x), str(H - BOTTOM + 14), f"{x:g}") for x in sorted(set(xs))]
    chart.yticks = [
        (Label(str(LEFT - 4), f"{TOP + (y - by) * ky + 4:.1f}", f"{y:.3g}"), py(y))
        for y in _ticks(y0, y1)
    ]
    for i, (name, pts) in enumerate(series.items()):
        chart.lines.append(
            Line(
                color=COLORS[i % len(COLORS)],
                points=" ".join(f"{px(x)},{py(y)}" for x, y in sorted(pts)),
                markers=[(px(x), py(y)) for x, y in pts],
                legend=Label(str(W - RIGHT - 4), str(TOP + 12 + 13 * i), name),
            )
        )
    return chart


def bar_chart(bars: dict[str, float], title: str, ylabel: str, fmt: str = "{:.3g}") -> Chart:
    chart = Chart(title, "", ylabel, empty=not bars)
    if not bars:
        return chart
    top = max(max(bars.values()), 1e-12)
    width = (W - LEFT - RIGHT) / len(bars)
    for i, (label, value) in enumerate(bars.items()):
        h = (H - TOP - BOTTOM) * value / top
        x = LEFT + i * width + width * 0.15
        y = H - BOTTOM - h
        middle = f"{x + width * 0.35:.1f}"
        chart.bars.append(
            Bar(
                color=COLORS[i % len(COLORS)],
                x=f"{x:.1f}",
                y=f"{y:.1f}",
                width=f"{width * 0.7:.1f}",
                height=f"{h:.1f}",
                value=Label(middle, f"{y - 3:.1f}", fmt.format(value)),
                label=Label(middle, str(H - BOTTOM + 14), label[:14]),
            )
        )
    return chart
