"""The learning-curve SVG: every point is drawn at its value, chance is marked."""

from __future__ import annotations

import re
import xml.etree.ElementTree as ET

from skelex_web.learning.plots import learning_curve_svg

NS = "{http://www.w3.org/2000/svg}"


def _points(svg: str) -> dict[str, list[tuple[float, float]]]:
    """(cy, value) of each circle, by head, read from the circles' tooltips."""
    out: dict[str, list[tuple[float, float]]] = {}
    for c in ET.fromstring(svg).iter(f"{NS}circle"):
        head, value = re.fullmatch(r"(\w+): ([\d.]+) at \d+ labels", c.find(f"{NS}title").text or "").groups()
        out.setdefault(head, []).append((float(c.get("cy", "nan")), float(value)))
    return out


def _tick_y(svg: str, label: str) -> float:
    for t in ET.fromstring(svg).iter(f"{NS}text"):
        if t.text == label:
            return float(t.get("y", "nan")) - 4
    raise AssertionError(f"no tick {label}")


def test_points_below_the_usual_range_are_drawn_at_their_value() -> None:
    rounds = [
        {"n_labelled": 8, "heads": {"abnormal": {"auroc": 0.25}, "implant": {"auroc": 0.267}}},
        {"n_labelled": 20, "heads": {"abnormal": {"auroc": 0.71}, "implant": {"auroc": 0.9}}},
    ]
    svg = learning_curve_svg(rounds)
    pts = _points(svg)
    # Early rounds worse than chance are not pinned to the axis: 0.25 and 0.267 are apart, below 0.4.
    (a_cy, _), (i_cy, _) = pts["abnormal"][0], pts["implant"][0]
    assert a_cy > i_cy > _tick_y(svg, "0.4")
    assert _tick_y(svg, "0.2") > a_cy  # the axis reaches down to them
    # Heights are linear in the value: 0.5 lies halfway between 0.2 and 0.8.
    assert abs(_tick_y(svg, "0.5") - (_tick_y(svg, "0.2") + _tick_y(svg, "0.8")) / 2) < 0.2
    assert 'class="chance"' in svg


def test_usual_range_when_every_head_beats_chance() -> None:
    svg = learning_curve_svg([{"n_labelled": 30, "heads": {"abnormal": {"auroc": 0.8}}}])
    labels = [t.text for t in ET.fromstring(svg).iter(f"{NS}text")]
    assert "0.4" in labels and "0.3" not in labels


def _x_ticks(svg: str) -> list[str]:
    return [
        t.text or ""
        for t in ET.fromstring(svg).iter(f"{NS}text")
        if t.get("text-anchor") == "middle" and (t.text or "").isdigit()
    ]


def test_label_axis_ticks_are_round_numbers() -> None:
    def at(n: int) -> list[str]:
        return _x_ticks(learning_curve_svg([{"n_labelled": n, "heads": {"abnormal": {"auroc": 0.7}}}]))

    assert at(13) == ["0", "5", "10", "15"]  # was 0 3 5 8 10 13
    assert at(4) == ["0", "2", "4", "6", "8", "10"]
    assert at(260) == ["0", "50", "100", "150", "200", "250", "300"]
    assert at(1000) == ["0", "200", "400", "600", "800", "1000"]


def test_rounds_without_metrics_are_not_called_no_rounds() -> None:
    rounds = [{"n_labelled": 1, "heads": {"abnormal": {"auroc": None}}}, {"n_labelled": 2, "heads": {}}]
    svg = learning_curve_svg(rounds)
    assert "2 rounds so far, none with enough answers of each class for a cross-validated AUROC." in svg
    assert "No training rounds yet" not in svg
    assert "No training rounds yet" in learning_curve_svg([])
