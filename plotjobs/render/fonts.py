"""The fonts charts are drawn in: DejaVu Sans, then Noto for every script it lacks, glyph by glyph.

The Noto fonts come from two packages (``manimgx-fonts``: Arabic, Devanagari, Hebrew, Thai and
the other scripts Latin faces lack; ``manimgx-fonts-cjk``: Chinese, Japanese and Korean). They
are registered with matplotlib's font manager on the first call, never at import. A chart's
fallback list holds only the families its text needs: matplotlib looks up every family of the
list for every piece of text, so a list of all two dozen would slow every chart. See docs/spec.md.
"""

from __future__ import annotations

import dataclasses
import functools
from collections.abc import Iterable
from importlib.resources import files
from pathlib import Path

from matplotlib import font_manager
from matplotlib.ft2font import FT2Font

# Matplotlib's own font, first, so Latin, Greek and Cyrillic text looks as it always did.
BASE_FAMILY = "DejaVu Sans"
SCRIPT_FONT_PACKAGE = "manimgx_fonts"
CJK_FONT_PACKAGE = "manimgx_fonts_cjk"
# Every Noto Sans CJK face covers Chinese, Japanese and Korean; SC draws Han characters in
# their simplified-Chinese forms, the ones most readers of Han text expect.
CJK_FAMILY = "Noto Sans CJK SC"
_FONT_SUFFIXES = {".ttf", ".otf", ".ttc"}
# CSS's number for a regular weight, as matplotlib's font manager scores weights.
_REGULAR_WEIGHT = 400


def _font_files(package: str) -> list[Path]:
    # A wheel installs its files as plain files, so the package is a real directory.
    directory = Path(str(files(package)))
    return sorted(path for path in directory.iterdir() if path.suffix.lower() in _FONT_SUFFIXES)


def _register_cjk_face(path: Path) -> None:
    """Register the CJK collection's SC face as a regular weight.

    The file is a variable font whose default instance is Thin (weight 100); matplotlib draws
    only that instance, so it stands for every weight, and saying so spares each lookup of a
    regular weight a "Failed to find font weight" log line.
    """
    for face_index in range(FT2Font(str(path)).num_faces):
        face = FT2Font(str(path), face_index=face_index)
        if face.family_name == CJK_FAMILY:
            entry = font_manager.ttfFontProperty(face)
            font_manager.fontManager.ttflist.append(dataclasses.replace(entry, weight=_REGULAR_WEIGHT))
            return
    raise LookupError(f"{path} holds no {CJK_FAMILY} face")


@functools.cache
def font_families() -> tuple[str, ...]:
    """Register the bundled fonts (once) and return the families text is drawn in, by preference."""
    cjk_files = _font_files(CJK_FONT_PACKAGE)
    if not cjk_files:
        raise LookupError(f"the {CJK_FONT_PACKAGE} package holds no font file")
    # Before addfont, which empties the font manager's lookup cache after each font it adds.
    _register_cjk_face(cjk_files[0])
    script_families: list[str] = []
    for path in _font_files(SCRIPT_FONT_PACKAGE):
        font_manager.fontManager.addfont(path)
        family = FT2Font(str(path)).family_name
        if family not in script_families:
            script_families.append(family)
    return (BASE_FAMILY, *sorted(script_families), CJK_FAMILY)


@functools.cache
def _characters_by_family() -> tuple[tuple[str, frozenset[int]], ...]:
    """Each family of ``font_families()``, in order, with the characters its font draws."""
    return tuple(
        (family, frozenset(font_manager.get_font(_font_path(family)).get_charmap())) for family in font_families()
    )


def _font_path(family: str) -> font_manager.FontPath:
    return font_manager.findfont(font_manager.FontProperties(family=family), fallback_to_default=False)


def families_for(texts: Iterable[str]) -> list[str]:
    """The fallback list ``texts`` need: DejaVu Sans, then the first family for each character it lacks."""
    by_family = _characters_by_family()
    missing = {ord(character) for character in set("".join(texts))} - by_family[0][1]
    families = [BASE_FAMILY]
    for family, characters in by_family[1:]:
        if missing & characters:
            families.append(family)
            missing -= characters
    return families
