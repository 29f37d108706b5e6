"""The chart form is read from the spec's JSON Schema, so new scalar fields appear without page changes."""

from __future__ import annotations

from typing import Literal

from flask.testing import FlaskClient
from pydantic import BaseModel, Field

from plotjobs.charts import ChartSpec
from plotjobs.form import form_fields


def test_every_scalar_field_of_the_spec_becomes_an_input() -> None:
    fields = {field.name: field for field in form_fields(ChartSpec.model_json_schema())}
    assert list(fields) == list(ChartSpec.model_fields)
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


def test_choices_flags_and_floats_slot_in_and_structured_fields_are_left_out() -> None:
    fields = {field.name: field for field in form_fields(_FutureSpec.model_json_schema())}
    assert set(fields) == {"theme", "legend", "opacity"}
    assert fields["theme"].choices == ("light", "dark")
    assert fields["legend"].widget == "checkbox" and fields["legend"].default is True
    assert fields["opacity"].value_type == "number" and fields["opacity"].help == "How opaque the lines are."


def test_the_page_renders_one_labelled_input_per_field(fake_client: FlaskClient) -> None:
    html = fake_client.get("/").get_data(as_text=True)
    for name in ChartSpec.model_fields:
        assert f'<label for="field-{name}">' in html
        assert f'id="field-{name}" name="{name}" data-spec-field' in html
