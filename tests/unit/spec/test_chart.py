"""Property tests over the spec model: whatever the API accepts, the worker renders."""

from __future__ import annotations

import datetime as dt
import io
from typing import Any

import matplotlib.image
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from pydantic import ValidationError

from plotjobs import generators
from plotjobs.render import chart as charts
from plotjobs.spec import chart as chart_spec
from plotjobs.spec.base import violations
from plotjobs.spec.chart import ChartSpec

PROPERTY_SETTINGS = settings(max_examples=30, deadline=None, suppress_health_check=[HealthCheck.too_slow])

numbers = st.floats(min_value=-chart_spec.MAX_ABS_VALUE, max_value=chart_spec.MAX_ABS_VALUE, allow_nan=False)
small_numbers = st.floats(min_value=-1e6, max_value=1e6, allow_nan=False) | st.integers(-1000, 1000)
text = st.text(alphabet=st.characters(exclude_categories=("Cc", "Cs")), max_size=40)
dates = st.dates(min_value=dt.date(chart_spec.MIN_YEAR, 1, 1), max_value=dt.date(chart_spec.MAX_YEAR, 12, 31))
moments = st.datetimes(
    min_value=dt.datetime(chart_spec.MIN_YEAR, 1, 1), max_value=dt.datetime(chart_spec.MAX_YEAR, 12, 31)
)


@st.composite
def xy_series(draw: st.DrawFn, x_kind: str, size: int) -> dict[str, Any]:
    series: dict[str, Any] = {"y": draw(st.lists(numbers | small_numbers, min_size=size, max_size=size))}
    if draw(st.booleans()):
        series["name"] = draw(text)
    if x_kind == "number":
        series["x"] = draw(st.lists(numbers | small_numbers, min_size=size, max_size=size))
    elif x_kind == "date":
        series["x"] = draw(
            st.lists(dates.map(dt.date.isoformat) | moments.map(dt.datetime.isoformat), min_size=size, max_size=size)
        )
    elif x_kind == "category":
        series["x"] = draw(
            st.lists(
                st.text(alphabet="ab$\\{}^_ x", min_size=1, max_size=8).filter(
                    lambda value: not chart_spec._LOOKS_LIKE_DATE.match(value)
                ),
                min_size=size,
                max_size=size,
            )
        )
    return series


@st.composite
def accepted_documents(draw: st.DrawFn) -> dict[str, Any]:
    """Spec documents the API accepts, over every kind, axis type and option."""
    kind = draw(st.sampled_from(["line", "bar", "scatter", "area", "histogram", "pie"]))
    document: dict[str, Any] = {
        "kind": kind,
        "width": draw(st.integers(100, 400)),
        "height": draw(st.integers(100, 400)),
        "dpi": draw(st.integers(50, 120)),
        "format": draw(st.sampled_from(["png", "svg", "pdf"])),
        "theme": draw(st.sampled_from(["light", "dark"])),
    }
    for key in ("title", "x_label", "y_label"):
        if draw(st.booleans()):
            document[key] = draw(text)
    if draw(st.booleans()):
        document["legend"] = draw(st.booleans())
    if draw(st.integers(0, 4)) == 0:
        document["seed"] = draw(st.integers(0, 2**32 - 1))
        return document
    if kind == "histogram":
        document["bins"] = draw(st.integers(1, 50))
        document["series"] = draw(
            st.lists(
                st.fixed_dictionaries(
                    {"values": st.lists(numbers | small_numbers, min_size=1, max_size=30)}, optional={"name": text}
                ),
                min_size=1,
                max_size=3,
            )
        )
    elif kind == "pie":
        size = draw(st.integers(1, 12))
        wedges = st.lists(st.floats(min_value=0, max_value=1e6) | st.integers(0, 100), min_size=size, max_size=size)
        series = {"y": draw(wedges.filter(lambda values: sum(values) > 0))}
        if draw(st.booleans()):
            series["x"] = draw(st.lists(text | small_numbers, min_size=size, max_size=size))
        document["series"] = [series]
    else:
        x_kind = draw(st.sampled_from(["none", "number", "date", "category"]))
        document["series"] = [draw(xy_series(x_kind, draw(st.integers(1, 20)))) for _ in range(draw(st.integers(1, 3)))]
    return document


@PROPERTY_SETTINGS
@given(accepted_documents())
def test_any_accepted_spec_renders_in_the_worker(document: dict[str, Any]) -> None:
    spec = ChartSpec.model_validate(document)
    # The worker's path: the job carries the JSON dump, the task validates it again, then renders.
    again = generators.get("chart").validate(spec.model_dump(mode="json"))
    assert again == spec
    data = charts.render(again)
    if spec.format == "png":
        assert matplotlib.image.imread(io.BytesIO(data), format="png").shape[:2] == (spec.height, spec.width)
    else:
        assert data.startswith(b"%PDF-" if spec.format == "pdf" else b"<?xml")


json_values = st.recursive(
    st.none() | st.booleans() | st.integers() | st.floats() | st.text(max_size=20),
    lambda children: st.lists(children, max_size=4) | st.dictionaries(st.text(max_size=8), children, max_size=4),
    max_leaves=20,
)
spec_keys = st.sampled_from([*ChartSpec.model_fields, "name", "x", "y", "values", "x_column"])
series_like = st.dictionaries(st.sampled_from(["name", "x", "y", "values", "x_column"]), json_values, max_size=4)


@PROPERTY_SETTINGS
@given(st.dictionaries(spec_keys, json_values | st.lists(series_like, max_size=3), max_size=6))
def test_any_document_is_accepted_or_refused_with_named_fields(document: dict[str, Any]) -> None:
    try:
        spec = ChartSpec.model_validate(document)
    except ValidationError as error:
        problems = violations(error)
        assert problems and all(field and message for field, message in problems)
    else:
        charts.render(spec.model_copy(update={"width": 100, "height": 100, "dpi": 50}))
