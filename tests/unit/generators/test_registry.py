"""The registry: generators come from entry points, declarations are checked, the allow-list is enforced."""

from __future__ import annotations

import re
from collections.abc import Iterator
from importlib import metadata
from typing import ClassVar

import fakeredis
import pytest
from pydantic import ConfigDict

from plotjobs import generators
from plotjobs.config import ConfigError, Settings
from plotjobs.errors import GeneratorDeclarationError, InvalidSpecError, UnknownGeneratorError
from plotjobs.generators import Generator
from plotjobs.generators.builtin import CHART
from plotjobs.spec.base import GeneratorSpec
from plotjobs.spec.chart import ChartSpec
from plotjobs.web import create_app


class NoteSpec(GeneratorSpec):
    model_config = ConfigDict(extra="forbid")
    generator_name: ClassVar[str] = "note"
    text: str = "hello"

    @property
    def output_format(self) -> str:
        return "txt"

    @property
    def content_type(self) -> str:
        return "text/plain"


class GreedySpec(NoteSpec):
    generator_name: ClassVar[str] = "note"
    generator: str = "mine"


TEXT = {"txt": "text/plain"}


def test_the_chart_is_registered_through_its_entry_point() -> None:
    installed = generators.installed()
    assert installed["chart"] is CHART
    assert CHART.spec_model is ChartSpec and CHART.bare_queues and not CHART.isolated
    assert CHART.content_types == {"png": "image/png", "svg": "image/svg+xml", "pdf": "application/pdf"}


def test_get_refuses_an_unknown_or_not_allow_listed_generator_naming_the_field() -> None:
    assert generators.get("chart", ["chart"]) is CHART
    for name, allowed in [("nope", None), ("chart", ["other"]), ("nope", ["chart"])]:
        with pytest.raises(UnknownGeneratorError) as refused:
            generators.get(name, allowed)
        assert refused.value.field == "generator" and repr(name) in refused.value.message
        assert refused.value.status == 422


def test_served_keeps_the_allow_list_order_and_names_a_missing_one() -> None:
    assert list(generators.served(["chart"])) == ["chart"]
    with pytest.raises(UnknownGeneratorError, match="GENERATORS names 'sparkline', which is not installed"):
        generators.served(["chart", "sparkline"])


def test_queues_per_generator_and_the_description_a_client_needs() -> None:
    note = Generator("note", NoteSpec, "notes.render:render", content_types=TEXT, title="Note")
    assert note.queue_name("high") == "note.high" and CHART.queue_name("high") == "high"
    described = note.describe()
    assert described["name"] == "note" and described["title"] == "Note" and described["formats"] == TEXT
    assert described["schema"]["properties"]["text"]["default"] == "hello" and described["isolated"] is False


def test_validate_names_every_bad_field() -> None:
    note = Generator("note", NoteSpec, "notes.render:render", content_types=TEXT)
    assert note.validate({"text": "hi"}) == NoteSpec(text="hi")
    with pytest.raises(InvalidSpecError, match="invalid note spec: text: Input should be a valid string"):
        note.validate({"text": 3})


@pytest.mark.parametrize(
    ("changes", "words"),
    [
        ({"name": "Note"}, "the name must be 1-32 lowercase letters"),
        ({"name": "other"}, r"generator 'other': its spec model's generator_name \('note'\) must be the generator's"),
        ({"spec_model": GreedySpec}, "must not have a field called 'generator'"),
        ({"spec_model": dict}, "spec_model must be a subclass of plotjobs.spec.base.GeneratorSpec"),
        ({"render_path": "notes.render"}, "'notes.render' is not an import path of the form module:function"),
        ({"content_types": {}}, "content_types must name at least one format"),
        ({"time_limit": 0}, "time_limit must be at least 1 second"),
        ({"memory_limit_mb": 0}, "memory_limit_mb must be at least 1"),
    ],
)
def test_an_unsound_declaration_is_refused_with_the_reason(changes: dict[str, object], words: str) -> None:
    declaration: dict[str, object] = {
        "name": "note", "spec_model": NoteSpec, "render_path": "notes.render:render", "content_types": TEXT,
    }  # fmt: skip
    with pytest.raises(ValueError, match=words):
        Generator(**{**declaration, **changes})  # type: ignore[arg-type]


@pytest.fixture
def broken_entry_points(monkeypatch: pytest.MonkeyPatch) -> Iterator[None]:
    """The chart's entry point, one naming a module that does not exist, and one whose declaration has another name."""
    points = {
        **generators._entry_points(),
        "broken": metadata.EntryPoint("broken", "no_such_module:GENERATOR", generators.ENTRY_POINT_GROUP),
        "liar": metadata.EntryPoint("liar", "plotjobs.generators.builtin:CHART", generators.ENTRY_POINT_GROUP),
    }
    monkeypatch.setattr(generators, "_entry_points", lambda: points)
    generators.load.cache_clear()
    yield
    generators.load.cache_clear()


@pytest.mark.usefixtures("broken_entry_points")
def test_a_broken_generator_is_refused_with_its_reason_and_only_when_served() -> None:
    assert list(generators.served(["chart"])) == ["chart"]
    with pytest.raises(UnknownGeneratorError, match="no generator 'broken' is served here"):
        generators.get("broken", ["chart"])
    words = "generator 'broken' (no_such_module:GENERATOR) cannot be loaded: ModuleNotFoundError"
    with pytest.raises(GeneratorDeclarationError, match=re.escape(words)):
        generators.served(["chart", "broken"])
    with pytest.raises(GeneratorDeclarationError, match="entry point 'liar' names a generator called 'chart'"):
        generators.get("liar")
    with pytest.raises(ConfigError, match=re.escape(words)):
        create_app(Settings(redis_url="redis://fake", generators=("chart", "broken")), redis=fakeredis.FakeRedis())
