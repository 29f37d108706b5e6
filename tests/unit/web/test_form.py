"""The chart form is read from the spec's JSON Schema, so new scalar fields appear without page changes."""

from __future__ import annotations

import re
from typing import Literal

from flask import Flask, render_template
from flask.testing import FlaskClient
from pydantic import BaseModel, Field

from plotjobs.spec.chart import ChartSpec
from plotjobs.web.form import form_fields


def test_every_scalar_field_of_the_spec_becomes_an_input() -> None:
    fields = {field.name: field for field in form_fields(ChartSpec.model_json_schema())}
    assert {"kind", "title", "seed", "format", "width", "height", "dpi"} <= set(fields)
    assert [name for name in ChartSpec.model_fields if name in fields] == list(fields)
    assert fields["kind"].widget == "select" and "line" in fields["kind"].choices
    assert fields["format"].choices == ("png", "svg", "pdf") and fields["format"].input_value == "png"
    assert (fields["width"].widget, fields["width"].minimum, fields["width"].maximum) == ("number", 100, 4000)
    assert fields["seed"].optional and fields["seed"].input_value == "" and fields["seed"].value_type == "integer"
    assert fields["start"].widget == "date"
    assert fields["title"].max_length == 200 and fields["title"].wide


class _Theme(BaseModel):
    name: str


class _FutureSpec(BaseModel):
    theme: Literal["light", "dark"] = "light"
    legend: bool = True
    opacity: float = Field(default=1.0, ge=0, le=1, description="How opaque the lines are.")
    series: list[_Theme] = []
    style: _Theme | None = None
    palette: Literal["warm", "cool"] | None = None


def test_choices_flags_and_floats_slot_in_and_structured_fields_are_left_out() -> None:
    fields = {field.name: field for field in form_fields(_FutureSpec.model_json_schema())}
    assert set(fields) == {"theme", "legend", "opacity", "palette"}
    assert fields["palette"].choices == ("warm", "cool") and fields["palette"].optional
    assert fields["theme"].choices == ("light", "dark")
    assert fields["legend"].widget == "checkbox" and fields["legend"].default is True
    assert fields["opacity"].value_type == "number" and fields["opacity"].help == "How opaque the lines are."


def test_the_page_renders_one_labelled_input_per_field(fake_client: FlaskClient) -> None:
    html = fake_client.get("/").get_data(as_text=True)
    for name in (field.name for field in form_fields(ChartSpec.model_json_schema())):
        assert f'<label for="field-{name}">' in html
        assert f'id="field-{name}" name="{name}" data-spec-field' in html


def test_fields_a_richer_spec_adds_render_as_their_own_controls(fake_app: Flask) -> None:
    with fake_app.test_request_context("/"):
        html = render_template("index.html", fields=form_fields(_FutureSpec.model_json_schema()))
    checkbox = r'<input type="checkbox" id="field-legend" name="legend" data-spec-field data-type="boolean"\s+checked'
    assert re.search(checkbox, html)
    assert '<option value="dark">dark</option>' in html and '<option value="light" selected>light</option>' in html
    assert re.search(r'<select id="field-palette"[^>]*>\s*<option value="">default</option>', html)
    assert re.search(r'id="field-opacity"[^>]*data-type="number"\s+type="number" inputmode="decimal" step="any"', html)
    assert 'name="series"' not in html
