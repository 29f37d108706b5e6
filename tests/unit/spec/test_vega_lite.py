"""The vega-lite spec: what fetches or could generate unbounded work is refused before any render, the field named."""

from __future__ import annotations

from typing import Any

import pytest
from pydantic import ValidationError

from plotjobs import generators
from plotjobs.errors import InvalidSpecError
from plotjobs.spec import vega_lite
from plotjobs.spec.base import violations
from plotjobs.spec.vega_lite import VegaLiteSpec

BAR = {
    "$schema": "https://vega.github.io/schema/vega-lite/v5.json",
    "data": {"values": [{"a": "A", "b": 3}, {"a": "B", "b": 5}]},
    "mark": "bar",
    "encoding": {"x": {"field": "a", "type": "nominal"}, "y": {"field": "b", "type": "quantitative"}},
}


def refusal(document: dict[str, Any], **fields: Any) -> tuple[str, str]:
    """The first (field, message) the model answers for this document."""
    with pytest.raises(ValidationError) as caught:
        VegaLiteSpec.model_validate({"vega_lite": document, **fields})
    return violations(caught.value)[0]


def test_a_plain_v5_document_is_accepted_with_the_defaults() -> None:
    spec = VegaLiteSpec.model_validate({"vega_lite": BAR})
    assert (spec.format, spec.scale, spec.ppi, spec.theme) == ("png", 1.0, 72, None)
    assert spec.content_type == "image/png"
    assert spec.generator_name == "vega-lite"


@pytest.mark.parametrize(
    "schema",
    [
        "https://vega.github.io/schema/vega-lite/v4.json",
        "https://vega.github.io/schema/vega/v5.json",
        "https://example.com/schema/vega-lite/v5.json",
        5,
    ],
)
def test_a_schema_other_than_vega_lite_v5_is_refused(schema: Any) -> None:
    field, message = refusal({**BAR, "$schema": schema})
    assert field == "vega_lite.$schema"
    assert "v5" in message


def test_versioned_v5_schemas_are_accepted() -> None:
    for schema in (
        "https://vega.github.io/schema/vega-lite/v5.21.0.json",
        "https://vega.github.io/schema/vega-lite/v5.8.json",
    ):
        VegaLiteSpec.model_validate({"vega_lite": {**BAR, "$schema": schema}})


@pytest.mark.parametrize(
    ("document", "where"),
    [
        ({**BAR, "data": {"url": "https://example.com/data.csv"}}, "vega_lite.data.url"),
        ({**BAR, "data": {"url": "data/cars.json"}}, "vega_lite.data.url"),
        ({"layer": [{**BAR, "data": {"url": "/etc/passwd"}}]}, "vega_lite.layer.0.data.url"),
        ({**BAR, "transform": [{"lookup": "a", "from": {"data": {"url": "x.csv"}, "key": "a"}}]},
         "vega_lite.transform.0.from.data.url"),
        ({**BAR, "mark": "image", "encoding": {"url": {"field": "a"}}}, "vega_lite.encoding.url"),
        ({**BAR, "encoding": {**BAR["encoding"], "href": {"field": "a"}}}, "vega_lite.encoding.href"),  # type: ignore[dict-item]
        ({**BAR, "mark": {"type": "bar", "href": "https://example.com"}}, "vega_lite.mark.href"),
    ],
)  # fmt: skip
def test_anything_that_fetches_or_links_is_refused_at_its_path(document: dict[str, Any], where: str) -> None:
    field, message = refusal(document)
    assert field == where
    assert "URL" in message or "href" in message


def test_a_column_called_url_in_inline_data_is_data_not_a_fetch() -> None:
    document = {**BAR, "data": {"values": [{"url": "https://example.com", "b": 1}]}}
    VegaLiteSpec.model_validate({"vega_lite": document})


def test_a_sequence_is_bounded_by_its_count() -> None:
    fits = {**BAR, "data": {"sequence": {"start": 0, "stop": vega_lite.MAX_ROWS, "as": "a"}}}
    VegaLiteSpec.model_validate({"vega_lite": fits})
    too_many = {**BAR, "data": {"sequence": {"start": 0, "stop": 1e9, "step": 0.5, "as": "a"}}}
    field, message = refusal(too_many)
    assert field == "vega_lite.data.sequence"
    assert "2000000000 values" in message


@pytest.mark.parametrize("sequence", [{"start": 0, "stop": 10, "step": 0}, {"start": 0}, {"start": "a", "stop": 3}])
def test_a_sequence_without_a_finite_count_is_refused(sequence: dict[str, Any]) -> None:
    field, _ = refusal({**BAR, "data": {"sequence": sequence}})
    assert field == "vega_lite.data.sequence"


def test_impute_key_sequences_are_bounded_too() -> None:
    transform = [{"impute": "b", "key": "a", "keyvals": {"start": 0, "stop": 10**7}}]
    field, _ = refusal({**BAR, "transform": transform})
    assert field == "vega_lite.transform.0.keyvals"


def test_a_fold_that_multiplies_rows_past_the_limit_is_refused_where_rows_are_known() -> None:
    rows = vega_lite.MAX_ROWS // 4
    document = {
        **BAR,
        "data": {"sequence": {"start": 0, "stop": rows, "as": "a"}},
        "transform": [{"calculate": "datum.a", "as": "b"}, {"fold": ["a", "b", "c", "d", "e"]}],
    }
    field, message = refusal(document)
    assert field == "vega_lite.transform.1"
    assert f"{rows * 5} rows" in message
    document["transform"] = [{"fold": ["a", "b", "c", "d"]}]
    VegaLiteSpec.model_validate({"vega_lite": document})


def test_a_flatten_of_long_inline_arrays_counts_their_length() -> None:
    values = [{"a": [0] * 26_000, "b": 1}] * 4
    document = {**BAR, "data": {"values": values}, "transform": [{"flatten": ["a"]}]}
    field, message = refusal(document)
    assert field == "vega_lite.transform.0"
    assert "104000 rows" in message
    document["data"] = {"values": [{"a": [0] * 26_000, "b": 1}] * 3}
    VegaLiteSpec.model_validate({"vega_lite": document})


def test_rows_inherited_by_a_layer_are_followed_through_its_transforms() -> None:
    document = {
        "data": {"sequence": {"start": 0, "stop": 50_000, "as": "a"}},
        "layer": [{"mark": "point", "transform": [{"fold": ["a", "b", "c"]}]}],
    }
    field, _ = refusal(document)
    assert field == "vega_lite.layer.0.transform.0"


def test_a_grouped_density_counts_rows_times_steps() -> None:
    document = {
        "data": {"sequence": {"start": 0, "stop": 1000, "as": "a"}},
        "transform": [{"density": "a", "groupby": ["a"], "steps": 200}],
        "mark": "line",
    }
    field, _ = refusal(document)
    assert field == "vega_lite.transform.0"


@pytest.mark.parametrize(
    ("member", "where"),
    [
        ({"transform": [{"density": "b", "steps": 10**6}]}, "vega_lite.transform.0.steps"),
        ({"encoding": {"x": {"field": "b", "bin": {"maxbins": 10**6}}}}, "vega_lite.encoding.x.bin.maxbins"),
        ({"transform": [{"calculate": "sequence(0, 1e9)", "as": "s"}]}, "vega_lite.transform.0.calculate"),
        ({"transform": [{"quantile": "b", "probs": [0.5] * 2000}]}, "vega_lite.transform.0.probs"),
        ({"encoding": {"x": {"field": "b", "axis": {"tickCount": 10**9}}}}, "vega_lite.encoding.x.axis.tickCount"),
        ({"encoding": {"x": {"field": "b", "bin": {"step": 1e-9, "extent": [0, 10]}}}}, "vega_lite.encoding.x.bin"),
        ({"encoding": {"x": {"field": "b", "bin": {"step": 1}}}}, "vega_lite.encoding.x.bin"),
        (
            {"transform": [{"bin": {"steps": [0.001, 0.01], "extent": [0, 100]}, "field": "b", "as": "c"}]},
            "vega_lite.transform.0.bin",
        ),
        ({"data": {"graticule": {"step": [0.01, 10]}}}, "vega_lite.data.graticule.step"),
        ({"data": {"graticule": {"precision": 0.001}}}, "vega_lite.data.graticule.precision"),
        ({"width": 100_000}, "vega_lite.width"),
        ({"height": {"step": 50_000}}, "vega_lite.height"),
    ],
)
def test_generating_members_are_bounded(member: dict[str, Any], where: str) -> None:
    field, _ = refusal({**BAR, **member})
    assert field == where


@pytest.mark.parametrize(
    "member",
    [
        {"encoding": {"x": {"field": "b", "bin": True}}},
        {"encoding": {"x": {"field": "b", "bin": {"maxbins": 50}}}},
        {"encoding": {"x": {"field": "b", "bin": {"step": 0.5, "extent": [0, 100]}}}},
        {"data": {"graticule": {"step": [15, 15]}}},
        {"data": {"graticule": True}},
        {"encoding": {"x": {"field": "b", "axis": {"tickCount": 20}}}},
    ],
)
def test_bounded_uses_of_the_same_members_are_accepted(member: dict[str, Any]) -> None:
    VegaLiteSpec.model_validate({"vega_lite": {**BAR, **member}})


def test_a_document_too_large_or_too_deep_is_refused() -> None:
    field, message = refusal({**BAR, "description": "x" * vega_lite.MAX_DOCUMENT_BYTES})
    assert field == "vega_lite"
    assert "bytes" in message
    deep: dict[str, Any] = {}
    node = deep
    for _ in range(vega_lite.MAX_DEPTH + 5):
        node["config"] = {}
        node = node["config"]
    field, message = refusal({**BAR, "usermeta": deep})
    assert field.startswith("vega_lite.usermeta")
    assert "nested" in message


@pytest.mark.parametrize(
    ("fields", "where"),
    [
        ({"format": "gif"}, "format"),
        ({"scale": 0}, "scale"),
        ({"scale": 10}, "scale"),
        ({"ppi": 1000}, "ppi"),
        ({"format": "svg", "ppi": 144}, "ppi"),
        ({"format": "pdf", "scale": 2}, "scale"),
        ({"theme": "neon"}, "theme"),
        ({"colour": "red"}, "colour"),
    ],
)
def test_our_own_fields_are_checked(fields: dict[str, Any], where: str) -> None:
    field, _ = refusal(BAR, **fields)
    assert field == where


def test_the_document_must_be_a_json_object() -> None:
    with pytest.raises(ValidationError) as caught:
        VegaLiteSpec.model_validate({"vega_lite": [BAR]})
    assert violations(caught.value)[0][0] == "vega_lite"


def test_png_and_svg_are_reproducible_pdf_and_randomness_are_not() -> None:
    assert VegaLiteSpec.model_validate({"vega_lite": BAR}).is_reproducible()
    assert VegaLiteSpec.model_validate({"vega_lite": BAR, "format": "svg"}).is_reproducible()
    assert not VegaLiteSpec.model_validate({"vega_lite": BAR, "format": "pdf"}).is_reproducible()
    for transform in ({"calculate": "random()", "as": "r"}, {"calculate": "now()", "as": "t"}, {"sample": 1}):
        document = {**BAR, "transform": [transform]}
        assert not VegaLiteSpec.model_validate({"vega_lite": document}).is_reproducible(), transform
    with_a_sample_column = {**BAR, "data": {"values": [{"sample": 1}]}}
    assert VegaLiteSpec.model_validate({"vega_lite": with_a_sample_column}).is_reproducible()


def test_the_registry_serves_it_isolated_with_a_time_limit() -> None:
    generator = generators.get("vega-lite")
    assert generator.spec_model is VegaLiteSpec
    assert generator.isolated
    assert generator.time_limit is not None
    assert generator.time_limit > 0
    assert not generators.get("chart").isolated
    with pytest.raises(InvalidSpecError, match=r"vega_lite\.data\.url"):
        generator.validate({"vega_lite": {**BAR, "data": {"url": "https://example.com/x.csv"}}})


HUGE_INT = int("9" * 400)


@pytest.mark.parametrize(
    ("document", "field", "words"),
    [
        (
            {"data": {"sequence": {"start": 0, "stop": 1, "step": 5e-324}}, "mark": "point"},
            "vega_lite.data.sequence",
            "generates over 1e+15 values",
        ),
        (
            {"mark": "bar", "encoding": {"x": {"field": "a", "bin": {"step": 1, "extent": [-1.7e308, 1.7e308]}}}},
            "vega_lite.encoding.x.bin",
            "bins; at most",
        ),
        (
            {"data": {"values": [{"a": 1}]}, "transform": [{"quantile": "a", "step": 5e-324}], "mark": "point"},
            "vega_lite.transform.0",
            "rows; at most",
        ),
        (
            {"data": {"graticule": {"step": [HUGE_INT, 10]}}, "mark": "geoshape"},
            "vega_lite.data.graticule.step",
            "degree",
        ),
        (
            {"mark": "point", "encoding": {"x": {"field": "a", "axis": {"tickCount": HUGE_INT}}}},
            "vega_lite.encoding.x.axis.tickCount",
            "at most",
        ),
        (
            {"data": {"sequence": {"start": 0, "stop": HUGE_INT}}, "mark": "point"},
            "vega_lite.data.sequence",
            "finite numbers",
        ),
    ],
)
def test_counts_from_extreme_numbers_are_refused(document: dict[str, Any], field: str, words: str) -> None:
    found, message = refusal(document)
    assert found == field and words in message


ONE_ROW = {"values": [{"a": 1}]}
CSV_TEXT = {"values": "a\n1\n", "format": {"type": "csv"}}


@pytest.mark.parametrize(
    ("document", "field", "words"),
    [
        (
            {"data": ONE_ROW, "mark": "point", "encoding": {"x": {"field": "a", "axis": {"labelExpr": "sequence(9)"}}}},
            "vega_lite.encoding.x.axis.labelExpr",
            "sequence(), pad() and split()",
        ),
        (
            {"data": ONE_ROW, "transform": [{"calculate": "split(pad('', 1e7, 'x'), '')", "as": "s"}], "mark": "point"},
            "vega_lite.transform.0.calculate",
            "any length",
        ),
        (
            {"data": ONE_ROW, "params": [{"name": "p", "expr": "pad('', 1e7)"}], "mark": "point"},
            "vega_lite.params.0.expr",
            "any length",
        ),
        (
            {"data": CSV_TEXT, "transform": [{"fold": ["a"]}], "mark": "point"},
            "vega_lite.transform.0",
            "a fold needs data whose rows can be counted",
        ),
        (
            {"data": CSV_TEXT, "transform": [{"flatten": ["a"]}], "mark": "point"},
            "vega_lite.transform.0",
            "a flatten needs data",
        ),
        (
            {
                "data": {"sequence": {"start": 0, "stop": 1000, "as": "g"}},
                "transform": [{"impute": "v", "key": "k", "keyvals": {"start": 0, "stop": 1000}, "groupby": ["g"]}],
                "mark": "point",
            },
            "vega_lite.transform.0",
            "may produce 1000000 rows",
        ),
    ],
)
def test_expressions_and_row_multipliers_that_build_without_bound_are_refused(
    document: dict[str, Any], field: str, words: str
) -> None:
    found, message = refusal(document)
    assert found == field and words in message


def test_csv_text_without_row_multipliers_and_a_small_impute_are_accepted() -> None:
    csv = {"data": CSV_TEXT, "transform": [{"filter": "datum.a > 0"}]}
    VegaLiteSpec.model_validate({"vega_lite": {**csv, "mark": "point"}})
    impute = {"impute": "v", "key": "k", "keyvals": [1, 2, 3], "groupby": ["g"]}
    VegaLiteSpec.model_validate({"vega_lite": {"data": ONE_ROW, "transform": [impute], "mark": "point"}})
