"""
Server-rendered SVG time charts for the staff console: no JavaScript, no CDN, nothing to build.

Pure: numbers and times in, markup out. Each drawn element carries its role as a class and its
data as attributes (`data-series`, `data-points`, `data-at`), so a test (or a person reading the
source of the page) can tell what was drawn, not just that a picture is there.
"""

import math
from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import datetime, timedelta

from django.utils.html import format_html
from django.utils.safestring import SafeString, mark_safe

WIDTH, HEIGHT = 760, 240
MARGIN_LEFT, MARGIN_RIGHT, MARGIN_TOP, MARGIN_BOTTOM = 56, 16, 12, 28

LINE_COLOR = "#2f6fb3"
THRESHOLD_COLOR = "#c0392b"
BAND_COLOR = "#2f6fb3"
MARKER_COLOR = "#c0392b"
SPAN_COLOR = "#e67e22"


@dataclass(frozen=True)
class Line:
    """A series drawn as a line (`step`: held until the next point, as daily totals are)."""

    name: str
    points: Sequence[tuple[datetime, float]]
    color: str = LINE_COLOR
    step: bool = False


@dataclass(frozen=True)
class Band:
    """A shaded range over time, e.g. mean ± z·std."""

    name: str
    points: Sequence[tuple[datetime, float, float]]  # (at, low, high)


@dataclass(frozen=True)
class Threshold:
    name: str
    value: float


@dataclass(frozen=True)
class Marker:
    """A point of interest (a firing); without a value, a vertical line at its time."""

    name: str
    at: datetime
    value: float | None = None


@dataclass(frozen=True)
class Span:
    """A period shaded across the plot (an alert open from `start` to `end`; `end=None`: still open)."""

    name: str
    start: datetime
    end: datetime | None


@dataclass
class _Scale:
    since: datetime
    until: datetime
    low: float
    high: float
    width: int
    height: int
    _span_seconds: float = field(init=False)

    def __post_init__(self):
        self._span_seconds = max((self.until - self.since).total_seconds(), 1.0)

    def x(self, at: datetime) -> float:
        inner = self.width - MARGIN_LEFT - MARGIN_RIGHT
        return round(MARGIN_LEFT + inner * (at - self.since).total_seconds() / self._span_seconds, 1)

    def y(self, value: float) -> float:
        inner = self.height - MARGIN_TOP - MARGIN_BOTTOM
        return round(MARGIN_TOP + inner * (self.high - value) / (self.high - self.low), 1)


def nice_ticks(low: float, high: float, count: int = 5, *, whole: bool = False) -> list[float]:
    """Round tick values (1, 2 or 5 × 10^k apart) covering [low, high]; `whole`: at least 1 apart."""
    if high <= low:
        return [low]
    raw = (high - low) / max(count - 1, 1)
    magnitude = 10 ** math.floor(math.log10(raw))
    step = next(m * magnitude for m in (1, 2, 5, 10) if m * magnitude >= raw)
    if whole:
        step = max(step, 1)
    first = math.floor(low / step) * step
    ticks = []
    tick = first
    while tick <= high + step * 1e-9:
        ticks.append(round(tick, 10))
        tick += step
    if ticks[-1] < high:
        ticks.append(round(tick, 10))
    return ticks


def format_number(value: float) -> str:
    """Short, readable: 1234567 → 1.23M, 0.000123 → 0.000123, 42.0 → 42."""
    magnitude = abs(value)
    for limit, unit, suffix in ((1e12, 1e12, "T"), (1e9, 1e9, "B"), (1e6, 1e6, "M"), (1e4, 1e3, "k")):
        if magnitude >= limit:
            return f"{value / unit:.3g}{suffix}"
    return f"{value:.4g}"


_TIME_STEPS = [timedelta(minutes=m) for m in (1, 5, 15, 30, 60, 120, 180, 360, 720)] + [
    timedelta(days=d) for d in (1, 2, 7, 14, 28, 56, 91, 182, 364)
]


def _time_ticks(since: datetime, until: datetime, most: int = 7) -> list[tuple[datetime, str]]:
    """Ticks on round UTC times (whole minutes, hours or midnights), at most `most` of them."""
    span = until - since
    step = next((step for step in _TIME_STEPS if span / step <= most), _TIME_STEPS[-1])
    fmt = "%b %d" if step >= timedelta(days=1) else "%b %d %H:%M" if span > timedelta(days=1) else "%H:%M"
    epoch = datetime(2000, 1, 3, tzinfo=since.tzinfo)  # a Monday midnight: weekly ticks fall on Mondays
    tick = epoch + step * math.ceil((since - epoch) / step)
    ticks = []
    while tick <= until:
        ticks.append((tick, tick.strftime(fmt)))
        tick += step
    return ticks


def _path(points: Sequence[tuple[float, float]], *, step: bool = False) -> str:
    commands = []
    previous_y = None
    for index, (x, y) in enumerate(points):
        if index == 0:
            commands.append(f"M{x},{y}")
        elif step:
            commands.append(f"H{x}V{y}" if y != previous_y else f"H{x}")
        else:
            commands.append(f"L{x},{y}")
        previous_y = y
    return "".join(commands)


def time_chart(
    *,
    title: str,
    lines: Sequence[Line] = (),
    bands: Sequence[Band] = (),
    thresholds: Sequence[Threshold] = (),
    markers: Sequence[Marker] = (),
    spans: Sequence[Span] = (),
    since: datetime | None = None,
    until: datetime | None = None,
    unit: str = "",
    counts: bool = False,
    width: int = WIDTH,
    height: int = HEIGHT,
    empty_message: str = "No data in this period.",
) -> SafeString:
    """
    An SVG chart of values over time (UTC), in a <figure> with a legend. `counts`: the values are
    counts (the axis starts at zero, whole-number ticks). Points that are not finite are left out.
    """
    lines = [Line(line.name, _finite(line.points), line.color, line.step) for line in lines]
    times = [at for line in lines for at, _ in line.points] + [at for band in bands for at, *_ in band.points]
    values = [value for line in lines for _, value in line.points]
    values += [bound for band in bands for _, low, high in band.points for bound in (low, high)]
    values += [threshold.value for threshold in thresholds]
    values += [marker.value for marker in markers if marker.value is not None]
    values = [value for value in values if math.isfinite(value)]
    since = since or (min(times) if times else None)
    until = until or (max(times) if times else None)

    parts = [
        format_html(
            '<svg class="pi-chart" xmlns="http://www.w3.org/2000/svg" viewBox="0 0 {} {}" width="{}" height="{}" '
            'style="max-width:100%;height:auto" role="img" aria-label="{}" font-family="sans-serif" font-size="11">',
            width,
            height,
            width,
            height,
            title,
        ),
        format_html("<title>{}</title>", title),
    ]
    drawn_points = sum(len(line.points) for line in lines)
    if since is None or until is None or not values or drawn_points == 0:
        parts.append(
            format_html(
                '<text class="pi-empty" x="{}" y="{}" text-anchor="middle" fill="currentColor">{}</text>',
                width / 2,
                height / 2,
                empty_message,
            )
        )
        parts.append(mark_safe("</svg>"))
        return _figure(title, parts, lines, bands, thresholds, markers, spans, unit)

    low, high = min(values), max(values)
    if counts:  # counts start at zero and have no halves
        low = min(low, 0)
    if high == low:
        pad = max(abs(low) * 0.1, 1)
        # A flat series of non-negative values keeps a non-negative axis (no "-1 tenants").
        low, high = (low if low >= 0 and (counts or low == 0) else low - pad), high + pad
    y_ticks = nice_ticks(low, high, whole=counts)
    scale = _Scale(since, until, min(y_ticks[0], low), max(y_ticks[-1], high), width, height)
    plot_bottom, plot_right = height - MARGIN_BOTTOM, width - MARGIN_RIGHT

    for tick in y_ticks:
        y = scale.y(tick)
        parts.append(
            format_html(
                '<line class="pi-grid" x1="{}" x2="{}" y1="{}" y2="{}" stroke="currentColor" stroke-opacity="0.12"/>'
                '<text class="pi-y-tick" x="{}" y="{}" text-anchor="end" fill="currentColor">{}</text>',
                MARGIN_LEFT,
                plot_right,
                y,
                y,
                MARGIN_LEFT - 6,
                y + 4,
                format_number(tick),
            )
        )
    for at, label in _time_ticks(since, until):
        x = scale.x(at)
        parts.append(
            format_html(
                '<line class="pi-grid" x1="{}" x2="{}" y1="{}" y2="{}" stroke="currentColor" stroke-opacity="0.12"/>'
                '<text class="pi-x-tick" x="{}" y="{}" text-anchor="{}" fill="currentColor">{}</text>',
                x,
                x,
                MARGIN_TOP,
                plot_bottom,
                x,
                height - 8,
                "end" if x > plot_right - 40 else "start" if x < MARGIN_LEFT + 40 else "middle",
                label,
            )
        )
    parts.append(
        format_html(
            '<line class="pi-axis" x1="{}" x2="{}" y1="{}" y2="{}" stroke="currentColor" stroke-opacity="0.5"/>',
            MARGIN_LEFT,
            plot_right,
            plot_bottom,
            plot_bottom,
        )
    )

    for span in spans:
        start = scale.x(max(span.start, since))
        end = scale.x(min(span.end or until, until))
        parts.append(
            format_html(
                '<rect class="pi-span" data-series="{}" data-start="{}" data-end="{}" x="{}" y="{}" width="{}" '
                'height="{}" fill="{}" fill-opacity="0.18"/>',
                span.name,
                _iso(span.start),
                _iso(span.end) if span.end else "",
                start,
                MARGIN_TOP,
                max(round(end - start, 1), 1.5),
                plot_bottom - MARGIN_TOP,
                SPAN_COLOR,
            )
        )
    for band in bands:
        upper = [(scale.x(at), scale.y(high)) for at, _, high in band.points]
        lower = [(scale.x(at), scale.y(low)) for at, low, _ in reversed(band.points)]
        if upper:
            parts.append(
                format_html(
                    '<path class="pi-band" data-series="{}" data-points="{}" d="{}Z" fill="{}" fill-opacity="0.15"/>',
                    band.name,
                    len(band.points),
                    _path(upper + lower),
                    BAND_COLOR,
                )
            )
    for threshold in thresholds:
        y = scale.y(threshold.value)
        parts.append(
            format_html(
                '<line class="pi-threshold" data-series="{}" data-value="{}" x1="{}" x2="{}" y1="{}" y2="{}" '
                'stroke="{}" stroke-dasharray="6 4" stroke-width="1.5"/>',
                threshold.name,
                threshold.value,
                MARGIN_LEFT,
                plot_right,
                y,
                y,
                THRESHOLD_COLOR,
            )
        )
    for line in lines:
        if line.points:
            parts.append(
                format_html(
                    '<path class="pi-line" data-series="{}" data-points="{}" d="{}" fill="none" stroke="{}" '
                    'stroke-width="1.5" stroke-linejoin="round"/>',
                    line.name,
                    len(line.points),
                    _path([(scale.x(at), scale.y(value)) for at, value in line.points], step=line.step)
                    # A step line's last value holds to the end of the chart (today's total so far).
                    + (f"H{scale.x(until)}" if line.step and line.points[-1][0] < until else ""),
                    line.color,
                )
            )
    for marker in markers:
        x = scale.x(marker.at)
        if marker.value is None:
            parts.append(
                format_html(
                    '<line class="pi-marker" data-series="{}" data-at="{}" x1="{}" x2="{}" y1="{}" y2="{}" '
                    'stroke="{}" stroke-width="1.5"/>',
                    marker.name,
                    _iso(marker.at),
                    x,
                    x,
                    MARGIN_TOP,
                    plot_bottom,
                    MARKER_COLOR,
                )
            )
        else:
            parts.append(
                format_html(
                    '<circle class="pi-marker" data-series="{}" data-at="{}" data-value="{}" cx="{}" cy="{}" r="4" '
                    'fill="{}" stroke="white" stroke-width="1"><title>{} at {}</title></circle>',
                    marker.name,
                    _iso(marker.at),
                    marker.value,
                    x,
                    scale.y(marker.value),
                    MARKER_COLOR,
                    format_number(marker.value),
                    _iso(marker.at),
                )
            )
    parts.append(mark_safe("</svg>"))
    return _figure(title, parts, lines, bands, thresholds, markers, spans, unit)


def _finite(points: Sequence[tuple[datetime, float]]) -> list[tuple[datetime, float]]:
    return [(at, value) for at, value in points if math.isfinite(value)]


def _iso(at: datetime) -> str:
    return at.strftime("%Y-%m-%dT%H:%M:%SZ")


def _figure(title, parts, lines, bands, thresholds, markers, spans, unit) -> SafeString:
    legend = [format_html('<span style="color:{}">━</span> {}', line.color, line.name) for line in lines]
    legend += [format_html('<span style="color:{}">■</span> {}', BAND_COLOR, band.name) for band in bands]
    legend += [
        format_html('<span style="color:{}">┅</span> {} ({})', THRESHOLD_COLOR, t.name, format_number(t.value))
        for t in thresholds
    ]
    if markers:
        legend.append(format_html('<span style="color:{}">●</span> {}', MARKER_COLOR, markers[0].name))
    if spans:
        legend.append(format_html('<span style="color:{}">■</span> {}', SPAN_COLOR, spans[0].name))
    caption = format_html(
        '<figcaption class="pi-chart-caption"><strong>{}</strong>{} · times in UTC<br>{}</figcaption>',
        title,
        f" ({unit})" if unit else "",
        mark_safe(" &nbsp; ".join(legend)),
    )
    return mark_safe(
        '<figure class="pi-chart-figure" style="margin:0 0 1em;max-width:760px">'
        + "".join(parts)
        + caption
        + "</figure>"
    )


__all__ = ["Band", "Line", "Marker", "Span", "Threshold", "format_number", "nice_ticks", "time_chart"]
