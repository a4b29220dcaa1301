import re
from datetime import UTC, datetime, timedelta

from core.charts import Band, Line, Marker, Span, Threshold, format_number, nice_ticks, time_chart

START = datetime(2026, 11, 1, tzinfo=UTC)


def coordinates(path_d: str) -> list[tuple[float, float]]:
    return [(float(x), float(y)) for x, y in re.findall(r"[ML](-?[\d.]+),(-?[\d.]+)", path_d)]


def test_line_is_drawn_point_by_point_left_to_right_higher_values_higher_up():
    points = [(START + timedelta(hours=i), value) for i, value in enumerate([1.0, 5.0, 3.0])]

    svg = time_chart(title="cpu", lines=[Line("cpu", points)])

    path = re.search(r'<path class="pi-line" data-series="cpu" data-points="3" d="([^"]+)"', svg)
    drawn = coordinates(path.group(1))
    assert len(drawn) == 3
    assert drawn[0][0] < drawn[1][0] < drawn[2][0]
    # SVG's y grows downwards: 5 is drawn above 3, which is above 1.
    assert drawn[1][1] < drawn[2][1] < drawn[0][1]


def test_threshold_band_marker_and_span_are_drawn_with_their_data():
    points = [(START + timedelta(minutes=i), float(i)) for i in range(60)]

    svg = time_chart(
        title="t",
        lines=[Line("requests", points)],
        thresholds=[Threshold("threshold", 40)],
        bands=[Band("mean ± 3σ", [(at, v - 2, v + 2) for at, v in points])],
        markers=[Marker("fired", points[45][0], 45.0)],
        spans=[Span("would-be alert", points[41][0], None)],
    )

    assert 'class="pi-threshold" data-series="threshold" data-value="40"' in svg
    assert 'class="pi-band" data-series="mean ± 3σ" data-points="60"' in svg
    assert 'class="pi-marker" data-series="fired" data-at="2026-11-01T00:45:00Z" data-value="45.0"' in svg
    assert 'class="pi-span" data-series="would-be alert" data-start="2026-11-01T00:41:00Z" data-end=""' in svg
    assert "times in UTC" in svg


def test_threshold_line_sits_between_values_below_and_above_it():
    points = [(START, 0.0), (START + timedelta(hours=1), 100.0)]

    svg = time_chart(title="t", lines=[Line("x", points)], thresholds=[Threshold("threshold", 50)])

    threshold_y = float(re.search(r'class="pi-threshold"[^>]* y1="([\d.]+)"', svg).group(1))
    (_, low_y), (_, high_y) = coordinates(re.search(r'class="pi-line"[^>]* d="([^"]+)"', svg).group(1))
    assert high_y < threshold_y < low_y


def test_step_lines_hold_each_value_until_the_next_point():
    points = [(START + timedelta(days=i), value) for i, value in enumerate([1.0, 1.0, 4.0])]

    svg = time_chart(title="usage", lines=[Line("tokens", points, step=True)])

    d = re.search(r'class="pi-line"[^>]* d="([^"]+)"', svg).group(1)
    assert re.fullmatch(r"M[\d.]+,[\d.]+H[\d.]+H[\d.]+V[\d.]+", d), d  # ends at the chart's last point


def test_a_step_line_holds_its_last_value_to_the_end_of_the_chart():
    points = [(START, 1.0), (START + timedelta(days=1), 2.0)]

    svg = time_chart(title="usage", lines=[Line("t", points, step=True)], until=START + timedelta(days=2))

    d = re.search(r'class="pi-line"[^>]* d="([^"]+)"', svg).group(1)
    assert d.endswith("H744.0")  # the plot's right edge (760 wide, 16 margin)


def test_titles_and_names_are_escaped():
    svg = time_chart(title="<script>", lines=[Line('a"b', [(START, 1.0), (START + timedelta(hours=1), 2.0)])])

    assert "<script>" not in svg
    assert "&lt;script&gt;" in svg and 'data-series="a&quot;b"' in svg


def test_no_points_says_so_instead_of_drawing_an_empty_frame():
    svg = time_chart(title="nothing", lines=[Line("x", [])], empty_message="No points yet.")

    assert "pi-line" not in svg
    assert '<text class="pi-empty"' in svg and "No points yet." in svg


def test_a_flat_series_still_gets_a_visible_range():
    points = [(START + timedelta(hours=i), 7.0) for i in range(5)]

    svg = time_chart(title="flat", lines=[Line("x", points)])

    ys = {y for _, y in coordinates(re.search(r'class="pi-line"[^>]* d="([^"]+)"', svg).group(1))}
    assert len(ys) == 1 and 12 < ys.pop() < 212  # inside the plot, not on its edge


def test_time_ticks_fall_on_round_utc_times():
    points = [(START + timedelta(hours=7, minutes=13), 1.0), (START + timedelta(days=6, hours=2), 2.0)]

    svg = time_chart(title="week", lines=[Line("x", points)])

    labels = re.findall(r'class="pi-x-tick"[^>]*>([^<]+)<', svg)
    assert labels == ["Nov 02", "Nov 03", "Nov 04", "Nov 05", "Nov 06", "Nov 07"]


def test_nice_ticks_cover_the_range_with_round_steps():
    assert nice_ticks(0.3, 97) == [0, 50, 100]
    assert nice_ticks(-3, 12) == [-5, 0, 5, 10, 15]
    assert nice_ticks(5, 5) == [5]


def test_format_number_is_short():
    assert [format_number(v) for v in (1234567, 42.0, 0.000123, 15300)] == ["1.23M", "42", "0.000123", "15.3k"]


def test_counts_start_at_zero_with_whole_ticks_and_a_flat_zero_series_has_no_negative_axis():
    points = [(START + timedelta(days=i), value) for i, value in enumerate([3.0, 4.0, 4.0])]
    zeros = [(START + timedelta(days=i), 0.0) for i in range(3)]

    counted = time_chart(title="installs", lines=[Line("n", points, step=True)], counts=True)
    flat = time_chart(title="installs", lines=[Line("n", zeros, step=True)], counts=True)

    assert re.findall(r'class="pi-y-tick"[^>]*>([^<]+)<', counted) == ["0", "1", "2", "3", "4"]
    assert re.findall(r'class="pi-y-tick"[^>]*>([^<]+)<', flat) == ["0", "1"]


def test_a_year_gets_at_most_seven_time_ticks():
    points = [(START, 1.0), (START + timedelta(days=365), 2.0)]

    labels = re.findall(r'class="pi-x-tick"[^>]*>([^<]+)<', time_chart(title="year", lines=[Line("x", points)]))

    assert 2 <= len(labels) <= 7


def test_values_that_are_not_finite_are_left_out_of_the_line():
    points = [(START, 1.0), (START + timedelta(hours=1), float("nan")), (START + timedelta(hours=2), 3.0)]

    svg = time_chart(title="gaps", lines=[Line("x", points)])

    assert "nan" not in svg.lower() and 'data-points="2"' in svg
