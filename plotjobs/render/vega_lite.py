"""The vega-lite generator's render: a validated VegaLiteSpec in, PNG, SVG or PDF out, through vl-convert.

vl-convert compiles and draws in its own embedded JavaScript engine, with fonts of its own and no
browser. It is given no base URL it may fetch from, so a document that got past the spec's checks
still loads nothing. The document compiles to SVG first: its size is checked there, before any
pixel is allocated, and the SVG is then encoded. Pure: no Redis, no queue, no web.
"""

from __future__ import annotations

import re

import vl_convert

from plotjobs.errors import RenderRefused
from plotjobs.generators import ProgressCallback
from plotjobs.spec.vega_lite import MAX_OUTPUT_PIXELS, VEGA_LITE_VERSION, VegaLiteSpec

# A compiled document stays under this many bytes of SVG (a view of MAX_ROWS marks is a few tens of MB).
MAX_SVG_BYTES = 64_000_000
_SVG_SIZE = re.compile(r'<svg\b[^>]*?\swidth="([0-9.]+)"[^>]*?\sheight="([0-9.]+)"')
# The converter answers any failure with a ValueError, its JavaScript stack trace after the first line.
_CONVERTER_PREFIX = re.compile(r"^Vega-Lite to \w+ conversion failed:\s*(Error:\s*)?")


def _ignore_progress(fraction: float, stage: str) -> None:
    return None


def compile_svg(spec: VegaLiteSpec) -> str:
    """The document compiled and drawn as SVG by the pinned Vega-Lite; RenderRefused with the converter's reason."""
    try:
        return vl_convert.vegalite_to_svg(
            spec.vega_lite, vl_version=VEGA_LITE_VERSION, theme=spec.theme, allowed_base_urls=[]
        )
    except ValueError as error:
        raise RenderRefused(f"Vega-Lite could not draw this document: {converter_reason(error)}") from None


def converter_reason(error: ValueError) -> str:
    """The first line of the converter's message, without its own prefix."""
    text = str(error).strip()
    reason = _CONVERTER_PREFIX.sub("", text).splitlines()
    return (reason[0] if reason else text)[:300]


def svg_size(svg: str) -> tuple[float, float]:
    """The width and height the converter wrote on the root element, in Vega-Lite pixels."""
    match = _SVG_SIZE.search(svg[:2000])
    if match is None:
        raise RenderRefused("Vega-Lite drew no picture of a known size")
    return float(match.group(1)), float(match.group(2))


def check_output_size(spec: VegaLiteSpec, svg: str, max_pixels: int = MAX_OUTPUT_PIXELS) -> tuple[int, int]:
    """The output's size in pixels; RenderRefused when it, or the SVG, is over its bound."""
    if "<image" in svg:
        raise RenderRefused("the drawing holds an image mark, which could read files: image marks are not drawn")
    if len(svg) > MAX_SVG_BYTES:
        raise RenderRefused(f"the drawing is {len(svg)} bytes of SVG; at most {MAX_SVG_BYTES}: draw fewer marks")
    width, height = svg_size(svg)
    pixels = (round(width * spec.pixel_factor), round(height * spec.pixel_factor))
    if pixels[0] * pixels[1] > max_pixels:
        message = f"the picture would be {pixels[0]}x{pixels[1]} pixels; at most {max_pixels} in all"
        raise RenderRefused(message)
    return pixels


def render(
    spec: VegaLiteSpec, progress: ProgressCallback | None = None, *, max_pixels: int = MAX_OUTPUT_PIXELS
) -> bytes:
    """Compile and draw ``spec`` and return the encoded file; ``progress(fraction, stage)`` marks each step."""
    report = progress or _ignore_progress
    report(0.1, "compiling")
    svg = compile_svg(spec)
    report(0.5, "checking size")
    check_output_size(spec, svg, max_pixels)
    report(0.6, "encoding")
    if spec.format == "svg":
        return svg.encode()
    try:
        if spec.format == "png":
            return vl_convert.svg_to_png(svg, scale=spec.scale, ppi=spec.ppi)
        return vl_convert.svg_to_pdf(svg)
    except ValueError as error:
        raise RenderRefused(f"the drawing could not be encoded as {spec.format}: {converter_reason(error)}") from None


def warm_up() -> None:
    """Start the converter's JavaScript engine and load Vega-Lite and the fonts once, before the first job."""
    for file_format in ("png", "svg", "pdf"):
        document = {
            "data": {"values": [{"x": "a", "y": 1}, {"x": "b", "y": 2}]},
            "mark": "bar",
            "encoding": {"x": {"field": "x", "type": "nominal"}, "y": {"field": "y", "type": "quantitative"}},
            "title": "warm-up",
        }
        render(VegaLiteSpec.model_validate({"vega_lite": document, "format": file_format}))
