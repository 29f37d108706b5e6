"""People's text in every script is drawn in a font that has it: no boxes, and Latin text as before."""

from __future__ import annotations

import hashlib
import json
import re
import subprocess
import sys
import warnings
from typing import Any

import pytest
from fontTools.ttLib import TTFont
from matplotlib import font_manager

from plotjobs.render import chart as charts
from plotjobs.render import fonts
from plotjobs.spec.chart import ChartSpec
from tests.support.processes import PROJECT_ROOT

# One string per script, as a person would label a chart in it.
SCRIPTS = {
    "Chinese": "各地区月销售额",
    "Japanese kana": "ひらがなとカタカナ",
    "Korean Hangul": "지역별 월 매출",
    "Arabic": "المبيعات الشهرية",
    "Cyrillic": "Продажи по месяцам",
    "Devanagari": "मासिक बिक्री क्षेत्र",
}
# The scripts DejaVu Sans, matplotlib's own font, has no glyph for (it does draw Arabic and Cyrillic).
SCRIPTS_DEJAVU_LACKS = ["Chinese", "Japanese kana", "Korean Hangul", "Devanagari"]
FORMATS = ["png", "svg", "pdf"]


def _characters_in(family: str) -> set[int]:
    """The characters the file matplotlib would draw ``family`` from maps, read by fontTools."""
    path = font_manager.findfont(font_manager.FontProperties(family=family), fallback_to_default=False)
    with TTFont(path, fontNumber=path.face_index, lazy=True) as font:
        return set(font.getBestCmap())


def _labelled_in(text: str, file_format: str) -> ChartSpec:
    """A bar chart whose title, axis labels, series name and categories are all ``text``."""
    words = text.split()
    return ChartSpec.model_validate(
        {
            "kind": "bar",
            "title": text,
            "x_label": text,
            "y_label": words[0],
            "series": [{"name": words[-1], "x": words, "y": list(range(1, len(words) + 1))}],
            "format": file_format,
            "width": 400,
            "height": 300,
        }
    )


def _missing_glyph_warnings(spec: ChartSpec) -> list[str]:
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        charts.render_showing_missing_glyphs(spec)
    return [str(warning.message) for warning in caught if re.search(charts.MISSING_GLYPH_WARNING, str(warning.message))]


@pytest.mark.parametrize("script", SCRIPTS)
def test_the_fonts_chosen_for_a_script_map_every_character_of_it(script: str) -> None:
    text = SCRIPTS[script]
    families = fonts.families_for([text])
    assert families[0] == fonts.BASE_FAMILY
    maps = [_characters_in(family) for family in families]
    unmapped = [character for character in text if not any(ord(character) in mapped for mapped in maps)]
    assert unmapped == [], f"{script}: {families} lack {unmapped}"


@pytest.mark.parametrize("script", SCRIPTS_DEJAVU_LACKS)
def test_dejavu_sans_alone_lacks_the_scripts_the_fallback_fonts_bring(script: str) -> None:
    # The coverage test above could not pass on DejaVu Sans alone.
    dejavu = _characters_in(fonts.BASE_FAMILY)
    assert [character for character in SCRIPTS[script] if not character.isspace() and ord(character) in dejavu] == []


@pytest.mark.parametrize("file_format", FORMATS)
@pytest.mark.parametrize("script", SCRIPTS)
def test_text_in_every_script_renders_without_a_missing_glyph(script: str, file_format: str) -> None:
    assert _missing_glyph_warnings(_labelled_in(SCRIPTS[script], file_format)) == []


@pytest.mark.parametrize("file_format", FORMATS)
@pytest.mark.parametrize("script", SCRIPTS_DEJAVU_LACKS)
def test_with_dejavu_sans_alone_the_same_render_warns_of_missing_glyphs(
    script: str, file_format: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    # The warning the test above looks for is the one matplotlib gives when a box is drawn.
    monkeypatch.setattr(charts, "families_for", lambda texts: [fonts.BASE_FAMILY])
    found = _missing_glyph_warnings(_labelled_in(SCRIPTS[script], file_format))
    assert found and all("DejaVu Sans" in message for message in found)


def test_the_render_itself_keeps_missing_glyph_warnings_quiet() -> None:
    # A character in no bundled font (a Tibetan letter) is drawn as a box, without a warning per job.
    spec = ChartSpec.model_validate({"title": "ཀ", "seed": 1, "start": "2024-03-01"})
    assert _missing_glyph_warnings(spec)
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        charts.render(spec)
    assert not [warning for warning in caught if re.search(charts.MISSING_GLYPH_WARNING, str(warning.message))]


def test_latin_text_needs_dejavu_sans_only_and_each_other_script_one_more_font() -> None:
    assert fonts.families_for(["Sales by month", "Ünïcödé Łatin", "Ελληνικά", "Кириллица", ""]) == ["DejaVu Sans"]
    assert fonts.families_for([SCRIPTS["Devanagari"]]) == ["DejaVu Sans", "Noto Sans Devanagari"]
    assert fonts.families_for([SCRIPTS["Chinese"], SCRIPTS["Korean Hangul"], SCRIPTS["Japanese kana"]]) == [
        "DejaVu Sans",
        fonts.CJK_FAMILY,
    ]


def _render_in_a_fresh_process(document: dict[str, Any]) -> str:
    code = (
        "import hashlib, json, sys; from plotjobs.render import chart; from plotjobs.spec.chart import ChartSpec;"
        " print(hashlib.sha256(chart.render(ChartSpec.model_validate(json.loads(sys.argv[1])))).hexdigest())"
    )
    result = subprocess.run(
        [sys.executable, "-c", code, json.dumps(document)],
        capture_output=True,
        text=True,
        check=True,
        timeout=60,
        cwd=PROJECT_ROOT,
    )
    return result.stdout.strip()


@pytest.mark.parametrize("file_format", FORMATS)
def test_a_chart_in_every_script_is_byte_identical_across_renders_and_processes(file_format: str) -> None:
    everything = " ".join(SCRIPTS.values())
    document = {"kind": "bar", "title": everything, "series": [{"name": everything, "x": list(SCRIPTS), "y": [1] * 6}]}
    document["format"] = file_format
    spec = ChartSpec.model_validate(document)
    first = charts.render(spec)
    assert charts.render(spec) == first
    assert _render_in_a_fresh_process(document) == hashlib.sha256(first).hexdigest()


def test_fonts_are_registered_on_the_first_render_not_at_import() -> None:
    code = (
        "from matplotlib import font_manager; import plotjobs.render.chart;"
        " print(any('manimgx' in entry.fname for entry in font_manager.fontManager.ttflist))"
    )
    result = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, check=True, timeout=60, cwd=PROJECT_ROOT
    )
    assert result.stdout.strip() == "False"


def test_a_cjk_chart_logs_no_font_weight_complaint() -> None:
    # The CJK font's only instance is Thin; registered as regular, no lookup logs "Failed to find font weight".
    code = (
        "import logging; logging.basicConfig(level=logging.WARNING);"
        " from plotjobs.render import chart; from plotjobs.spec.chart import ChartSpec;"
        f" chart.render(ChartSpec.model_validate({{'title': {SCRIPTS['Chinese']!r}, 'seed': 1}}))"
    )
    result = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, check=True, timeout=60, cwd=PROJECT_ROOT
    )
    assert "findfont" not in result.stderr, result.stderr
