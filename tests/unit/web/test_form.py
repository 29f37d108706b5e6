"""The chart form is read from the spec's JSON Schema, so new scalar fields appear without page changes."""

from __future__ import annotations

import re
from typing import Literal

from flask import Flask, render_template
from flask.testing import FlaskClient
from pydantic import BaseModel, Field

from plotjobs.spec.chart import ChartSpec
from plotjobs.web.form import CHART_LAYOUT, XY_KINDS, FormLayout, form_fields


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


def test_the_chart_layout_places_each_field_by_kind_by_data_and_under_more_options() -> None:
    fields = {field.name: field for field in form_fields(ChartSpec.model_json_schema(), CHART_LAYOUT)}
    kinds = set(fields["kind"].choices)
    assert set(XY_KINDS) < kinds
    assert fields["bins"].kinds == ("histogram",)
    assert fields["x_type"].kinds == XY_KINDS
    # A pie has no axes to label; every other field applies to every kind.
    assert "pie" not in fields["x_label"].kinds and set(fields["x_label"].kinds) == kinds - {"pie"}
    assert [name for name, field in fields.items() if field.kinds] == ["x_label", "y_label", "x_type", "bins"]
    assert [name for name, field in fields.items() if field.demo_only] == ["seed", "start"]
    assert [name for name, field in fields.items() if field.lead] == ["kind"]
    shown = [name for name, field in fields.items() if not field.more]
    assert shown == ["kind", "title", "x_label", "y_label", "bins"]
    assert {"width", "height", "dpi", "theme", "format"} <= {name for name, field in fields.items() if field.more}
    # Without a layout every field is shown for every kind, as before.
    plain = form_fields(ChartSpec.model_json_schema())
    assert not any(field.kinds or field.demo_only or field.more or field.lead for field in plain)
    assert CHART_LAYOUT.kinds.keys() <= ChartSpec.model_fields.keys()
    assert set(CHART_LAYOUT.more) | set(CHART_LAYOUT.demo_only) <= ChartSpec.model_fields.keys()


def test_an_optional_flag_is_a_choice_that_can_be_left_to_the_server() -> None:
    legend = next(field for field in form_fields(ChartSpec.model_json_schema()) if field.name == "legend")
    assert (legend.widget, legend.value_type, legend.choices, legend.optional) == (
        "select",
        "boolean",
        ("true", "false"),
        True,
    )


def test_the_page_folds_the_rare_fields_and_marks_where_each_applies(fake_client: FlaskClient) -> None:
    html = fake_client.get("/").get_data(as_text=True)
    shown, folded = html.split('<details class="more-options">')
    assert 'id="field-title"' in shown and 'id="field-bins"' in shown and 'id="field-width"' not in shown
    for name in ("width", "height", "dpi", "theme", "format", "seed"):
        assert f'id="field-{name}"' in folded
    assert re.search(r'<div class="field" data-kinds="histogram">\s*<label for="field-bins">', html)
    assert re.search(r'<div class="field" data-when="demo">\s*<label for="field-seed">', html)
    # The data step and the chart's own mapping step, every control labelled.
    for control in ("data-paste", "data-file", "data-separator", "map-x", "map-values", "map-labels"):
        assert f'<label for="{control}">' in html
    assert f'data-kinds="{" ".join(XY_KINDS)}"' in html


def test_a_layout_applies_to_any_generators_fields(fake_app: Flask) -> None:
    layout = FormLayout(kinds={"opacity": ("line",)}, demo_only=("palette",), more=("theme",))
    with fake_app.test_request_context("/"):
        html = render_template("index.html", fields=form_fields(_FutureSpec.model_json_schema(), layout))
    assert '<details class="more-options">' in html and 'data-kinds="line"' in html and 'data-when="demo"' in html
    # A generator without a mapping step of its own gets none.
    assert 'id="mapping"' not in html


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
