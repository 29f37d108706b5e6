"""Each generator's form is read from its spec's JSON Schema: new fields and generators need no page changes."""

from __future__ import annotations

import json
import re
from html import unescape
from typing import Any, ClassVar, Literal

from flask import Flask, render_template
from flask.testing import FlaskClient
from pydantic import BaseModel, Field
from redis import Redis

from plotjobs import generators
from plotjobs.config import Settings
from plotjobs.generators import Generator
from plotjobs.spec.base import GeneratorSpec
from plotjobs.spec.chart import ChartSpec
from plotjobs.spec.report import ReportSpec
from plotjobs.spec.vega_lite import VegaLiteSpec
from plotjobs.web import create_app
from plotjobs.web.form import (
    CHART_LAYOUT,
    XY_KINDS,
    FormLayout,
    default_layout,
    form_fields,
    generator_forms,
)


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
    # The chart's own form; the other generators' forms follow in templates of their own.
    html = fake_client.get("/").get_data(as_text=True).split('<template class="generator-template"')[0]
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


class _ThirdPartySpec(GeneratorSpec):
    """A generator's spec the page knows nothing of."""

    shape: dict[str, Any]
    layers: list[int] = Field(default=[], examples=[[1, 2, 3]])
    caption: str = Field(max_length=40)
    title: str = ""
    format: Literal["svg", "png"] = "svg"
    stroke: float = 1.0
    outline: bool = False

    generator_name: ClassVar[str] = "stripes"

    @property
    def output_format(self) -> str:
        return self.format

    @property
    def content_type(self) -> str:
        return "image/svg+xml"


def test_a_generator_without_a_layout_folds_what_its_spec_can_do_without_and_keeps_the_title_in_sight() -> None:
    schema = _ThirdPartySpec.model_json_schema()
    layout = default_layout(schema)
    assert set(layout.more) == {"layers", "format", "stroke", "outline"} and layout.structured
    fields = {field.name: field for field in form_fields(schema, layout)}
    assert list(fields) == ["shape", "layers", "caption", "title", "format", "stroke", "outline"]
    assert [name for name, field in fields.items() if not field.more] == ["shape", "caption", "title"]
    assert [name for name, field in fields.items() if field.required] == ["shape", "caption"]
    assert fields["caption"].max_length == 40 and fields["format"].choices == ("svg", "png")


def test_object_and_list_fields_become_json_areas_with_the_schemas_example_or_an_empty_document() -> None:
    fields = {field.name: field for field in form_fields(_ThirdPartySpec.model_json_schema(), default_layout({}))}
    assert (fields["shape"].widget, fields["shape"].value_type, fields["shape"].example) == ("json", "object", "{}")
    assert (fields["layers"].widget, fields["layers"].value_type) == ("json", "array")
    assert json.loads(fields["layers"].example) == [1, 2, 3] and fields["shape"].wide
    # The chart fills its structured fields (series) from its own mapping step, never as JSON.
    assert not any(field.widget == "json" for field in form_fields(ChartSpec.model_json_schema(), CHART_LAYOUT))


def test_the_built_in_generators_forms_hold_a_valid_example_of_their_document() -> None:
    forms = {form.name: form for form in generator_forms(generators.served(["chart", "vega-lite", "report"]).values())}
    assert list(forms) == ["vega-lite", "report"]
    assert (forms["vega-lite"].title, forms["report"].title) == ("Vega-Lite", "Report")
    vega_lite = {field.name: field for field in forms["vega-lite"].fields}
    assert [name for name, field in vega_lite.items() if not field.more] == ["vega_lite"]
    assert vega_lite["format"].more and vega_lite["format"].input_value == "png"
    report = {field.name: field for field in forms["report"].fields}
    assert [name for name, field in report.items() if not field.more] == ["title", "parts"]
    # Each example, sent as it is, is a valid spec: the placeholder never shows something refused.
    VegaLiteSpec.model_validate({"vega_lite": json.loads(vega_lite["vega_lite"].example)})
    ReportSpec.model_validate({"parts": json.loads(report["parts"].example)})


def _page(fake_redis: Redis, served: list[str]) -> str:
    settings = Settings(redis_url="redis://fake", secret_key="test-secret", generators=tuple(served))
    app = create_app(settings, redis=fake_redis)
    return app.test_client().get("/").get_data(as_text=True)


def test_the_page_offers_every_served_generator_the_chart_first_and_its_form_unchanged(fake_redis: Redis) -> None:
    html = _page(fake_redis, ["chart", "vega-lite", "report"])
    assert '<label for="generator-choice">What to make</label>' in html
    options = re.findall(r'<option value="([^"]+)" data-title="([^"]+)" data-action="([^"]+)"', html)
    assert options == [
        ("chart", "Chart", "Render chart"),
        ("vega-lite", "Vega-Lite", "Render Vega-Lite"),
        ("report", "Report", "Render Report"),
    ]
    chart, *others = html.split('<template class="generator-template"')
    assert 'data-generator="chart"' in chart and 'id="data-step"' in chart and 'id="mapping"' in chart
    assert ">Render chart</button>" in html
    vega_lite, report = others
    # Every control labelled, its id scoped by its generator; a JSON area shows its example.
    for name in ("vega_lite", "format", "scale", "ppi", "theme"):
        assert f'<label for="field-vega-lite-{name}">' in vega_lite and f'id="field-vega-lite-{name}"' in vega_lite
    area = re.search(r'<textarea id="field-vega-lite-vega_lite" name="vega_lite"[^>]*>', vega_lite)
    assert area and 'data-type="object"' in area[0] and 'aria-required="true"' in area[0]
    placeholder = re.search(r'placeholder="([^"]*)"', area[0])
    assert placeholder and json.loads(unescape(placeholder[1]))["mark"] == "bar"
    assert re.search(r'<textarea id="field-report-parts" name="parts" data-spec-field data-type="array"', report)
    assert '<details class="more-options">' in vega_lite and '<label for="field-report-title">' in report


def test_one_generator_served_asks_no_choice(fake_redis: Redis) -> None:
    chart_only = _page(fake_redis, ["chart"])
    assert 'id="generator-choice"' not in chart_only and "generator-template" not in chart_only
    assert 'id="data-step"' in chart_only
    vega_lite_only = _page(fake_redis, ["vega-lite"])
    assert 'id="generator-choice"' not in vega_lite_only and 'id="data-step"' not in vega_lite_only
    assert 'data-generator="vega-lite"' in vega_lite_only and ">Render Vega-Lite</button>" in vega_lite_only


def test_a_third_party_generator_gets_a_usable_form_without_a_layout(fake_app: Flask) -> None:
    stripes = Generator(
        name="stripes",
        spec_model=_ThirdPartySpec,
        render_path="tests.fixtures:render",
        title="Stripes",
        content_types={"svg": "image/svg+xml"},
    )
    with fake_app.test_request_context("/"):
        html = render_template("index.html", fields=[], chart_served=True, generator_forms=generator_forms([stripes]))
    stripes_form = html.split('<template class="generator-template" data-generator="stripes">')[1]
    shown, folded = stripes_form.split('<details class="more-options">')
    assert '<label for="field-stripes-shape">' in shown and '<label for="field-stripes-caption">' in shown
    assert '<label for="field-stripes-outline">' in folded and '<label for="field-stripes-layers">' in folded
