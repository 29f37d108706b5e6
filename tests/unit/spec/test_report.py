"""The report spec: bounded parts and text, each part checked by its own generator's model, the field named."""

from __future__ import annotations

import datetime as dt
from typing import Any

import pytest
from pydantic import ValidationError

from plotjobs import generators
from plotjobs.spec import report
from plotjobs.spec.base import violations
from plotjobs.spec.chart import ChartSpec
from plotjobs.spec.report import ReportSpec
from plotjobs.spec.vega_lite import VegaLiteSpec

VEGA_LITE = {"data": {"values": [{"a": "A", "b": 3}]}, "mark": "bar", "encoding": {"x": {"field": "a"}}}
CHART = {"generator": "chart", "spec": {"seed": 1, "start": "2024-01-01"}}
DOCUMENT = {"generator": "vega-lite", "spec": {"vega_lite": VEGA_LITE}}


def refusal(document: dict[str, Any]) -> tuple[str, str]:
    with pytest.raises(ValidationError) as caught:
        ReportSpec.model_validate(document)
    return violations(caught.value)[0]


def test_a_report_of_each_kind_of_part_is_accepted() -> None:
    spec = ReportSpec.model_validate({"title": "Q1", "parts": [{"text": "Hello\nworld"}, CHART, DOCUMENT]})
    assert (spec.format, spec.content_type, spec.generator_name) == ("pdf", "application/pdf", "report")
    assert [part.kind for part in spec.parts] == ["text", "chart", "vega-lite"]
    drawings = spec.drawings()
    assert drawings[0] is None
    assert isinstance(drawings[1], ChartSpec)
    assert isinstance(drawings[2], VegaLiteSpec)
    assert ReportSpec.model_validate({"parts": [CHART], "format": "png"}).content_type == "image/png"


def test_drawings_are_placed_as_png_whatever_their_format() -> None:
    part = {"generator": "chart", "spec": {"seed": 1, "format": "svg"}}
    drawing = ReportSpec.model_validate({"parts": [part]}).drawings()[0]
    assert drawing is not None
    assert drawing.format == "png"


@pytest.mark.parametrize(
    ("document", "where"),
    [
        ({"parts": []}, "parts"),
        ({"parts": [{"text": "x"}] * (report.MAX_PARTS + 1)}, "parts"),
        ({"parts": [{"text": "x"}], "format": "svg"}, "format"),
        ({"parts": [{"text": "x"}], "title": "t" * (report.MAX_TITLE + 1)}, "title"),
        ({"parts": [{"text": ""}]}, "parts.0.text"),
        ({"parts": [{"text": "x" * (report.MAX_TEXT_BLOCK + 1)}]}, "parts.0.text"),
        ({"parts": [{"text": "line\n" * report.MAX_TEXT_LINES}]}, "parts.0.text"),
        ({"parts": [{"text": "bell\x07"}]}, "parts.0.text"),
        ({"parts": [{"text": "x" * report.MAX_TEXT_BLOCK}] * 6}, "parts"),
        ({"parts": [{"text": "x", "generator": "chart", "spec": {}}]}, "text"),
        ({"parts": [{"generator": "chart"}]}, "generator"),
        ({"parts": [{"spec": {}}]}, "generator"),
        ({"parts": [{"generator": "table", "spec": {}}]}, "parts.0.generator"),
        ({"parts": [{"text": "x"}, {"generator": "chart", "spec": {"kind": "donut"}}]}, "parts.1.spec.kind"),
        ({"parts": [{"generator": "chart", "spec": {"width": 2500, "height": 2500}}]}, "parts.0.spec.width"),
        ({"parts": [{"generator": "vega-lite", "spec": {"vega_lite": {**VEGA_LITE, "data": {"url": "x.csv"}}}}]},
         "parts.0.spec.vega_lite.data.url"),
        ({"parts": [{"generator": "vega-lite", "spec": {"vega_lite": VEGA_LITE, "scale": 9}}]}, "parts.0.spec.scale"),
    ],
)  # fmt: skip
def test_bad_reports_are_refused_with_the_field_named(document: dict[str, Any], where: str) -> None:
    field, _ = refusal(document)
    assert field == where


def test_text_keeps_line_breaks_and_tabs() -> None:
    spec = ReportSpec.model_validate({"parts": [{"text": "a\tb\nc"}]})
    assert spec.parts[0].text == "a\tb\nc"


def test_reproducible_only_when_every_drawing_is() -> None:
    assert ReportSpec.model_validate({"parts": [{"text": "x"}, CHART, DOCUMENT]}).is_reproducible()
    unseeded = {"generator": "chart", "spec": {}}
    assert not ReportSpec.model_validate({"parts": [CHART, unseeded]}).is_reproducible()
    random = {"generator": "vega-lite", "spec": {"vega_lite": {**VEGA_LITE, "transform": [{"sample": 1}]}}}
    assert not ReportSpec.model_validate({"parts": [random]}).is_reproducible()


def test_pinning_dates_the_seeded_charts_and_writes_every_part_out_in_full() -> None:
    seeded = {"generator": "chart", "spec": {"seed": 3}}
    spec = ReportSpec.model_validate({"parts": [{"text": "x"}, seeded]})
    pinned = spec.pinned(dt.date(2024, 5, 1))
    assert pinned.parts[0] == spec.parts[0]
    assert pinned.parts[1].spec is not None
    assert pinned.parts[1].spec["start"] == "2024-05-01"
    assert ReportSpec.model_validate(pinned.model_dump(mode="json")) == pinned
    short = ReportSpec.model_validate({"parts": [{"generator": "chart", "spec": {"seed": 3, "start": "2024-05-01"}}]})
    in_full = {**ChartSpec().model_dump(mode="json"), "seed": 3, "start": "2024-05-01"}
    long = ReportSpec.model_validate({"parts": [{"generator": "chart", "spec": in_full}]})
    assert short.pinned(dt.date(2024, 5, 1)) == long.pinned(dt.date(2024, 5, 1))


def test_the_registry_serves_it_isolated_since_parts_may_run_vega_lite() -> None:
    generator = generators.get("report")
    assert generator.spec_model is ReportSpec
    assert generator.isolated
    assert generator.time_limit is not None


def test_the_chart_parts_hold_at_most_the_inline_points_in_all() -> None:
    half = report.MAX_CHART_POINTS // 2
    part = {"generator": "chart", "spec": {"kind": "line", "series": [{"y": [1.0] * half}]}}
    accepted = ReportSpec.model_validate({"parts": [part, part]})
    assert len(accepted.parts) == 2
    with pytest.raises(ValidationError) as caught:
        ReportSpec.model_validate({"parts": [part, {"text": "between"}, part, part]})
    field, message = violations(caught.value)[0]
    assert field == "parts.3.spec.series"
    assert f"at most {report.MAX_CHART_POINTS} in all" in message
