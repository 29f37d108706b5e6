"""The "still rendering" image a chart URL answers with 503 while its render has not finished.

A 400x100 PNG (drawn once with matplotlib and reduced to 16 colours; the web app never imports
matplotlib) and an SVG of the requested size. Both are served with ``Cache-Control: no-store``,
so a reload asks again and shows the chart.
"""

from __future__ import annotations

import base64
from html import escape

PNG_WIDTH, PNG_HEIGHT = 400, 100

PNG = base64.b64decode(
    "iVBORw0KGgoAAAANSUhEUgAAAZAAAABkBAMAAABa5XtEAAAAMFBMVEVUXGrc3uKorbV7go69wce4u8Ly8/U3QVHm6OtxeIXT1dqU"
    "mqOEipWlqrLGyc+MkZvGA1tRAAAAEHRSTlP/////////////////////zSGylAAABoZJREFUeNrt2n9sE+cZwPGvz46NSYCElKkp"
    "a3dK3bGMpaRSm6qhG9dAf/DH1DCxUUEbDB2mDo2WorCONZu8Nll0iHRe6MiUsoS2tAhFqS7poIKU7arCoiQy0ACiWVExaYOyiJBU"
    "XZMYm8v+OKexCZtgzLhi70kn3T3v8z6+j+99705nWzzcHIuEgAiIgAiIgAiIgAiIgAiIgAiIgAiIgAiIgAiIgAiIgFwvxCZTiE2+"
    "cps2WV+5wmcqAK74oOuGQ5pAKoTmvPBxmvOumHJpEmLtYsoBO7oBcrW4eKk81ZpIiO0eT6ZPOg5e+erq+y8LfHX8Wf+p2xT//xzy"
    "VlA1ZIBz/qvKD637dy3bi5I6R3Zv8cwcvs2yRJmcHlIhhUiFICmSAoRlAJcMLlzZCi5z/LeyEAinnyg0R47LHKLRChOzZC7gwvXQ"
    "jCVyYiHpfZwteyMccE9OD6mz5ISt8eguHF0LOnUibw1oUDA4oFC6ePDpLkrfGdwBB1a/+jEwTas5SWhBp06uZms82gBgazy6C7YN"
    "7kBaObIDShcPrgoFihIMGQb2h9TYgWXs/l1+merRGO+pW06ft24Y2/pQ3SooVnXggrpJMVaoPwOw+tUqMw9GytRnAfLL1I1mVsq7"
    "6qYyKFbVkHqNENs1QvYMP/mZviXDcywm5lg9NLpmaP1P9pAftqCfefpPjP/c6Zk1gNWj28HqUcYjdk/eaeCitroI8sMWYF6GZ2Eb"
    "sP79oec2Y/Uo46MbhnLy3Fg9H9s9CZ4j/d6HO31TrkxST/eSDgWbfsmQvEpE4Y4a1/cr4ZsAPMix4DyVQ5Pfnn7JAHoaaAMkbwOb"
    "zSzp5T+nbZjolliIUbPGPXdKDckRCJwCG4ZfSgUFuTQQKINhABR6kLWYk2/D8AMzO+9TACntqyzpw6e6nBPdEju0wKj95VB8ZBRC"
    "frCbexbwL0IFPJQFJycXocsrjZX8PrjS7D8RUVR+TWy3hEHkIKmW0YzLopHtHpD/ARD5pxxMZ7/djWTEZOiN7rSptQqajupEan4b"
    "jObO+43H+d8+Ml1jfkGj6mxzfFn5Xkv8SUk93/vtzQC0Hzm3lVklf/lr9opYasmFZYcB5M/ebo/GVp74PO+MDu2PnOqvjz7cPJb1"
    "LoA084HTwYTOkft/1KG/YtTVuOPD6iZ1t25u9mzc6iNUt3TLs3EDsi7rMADHfnVyItb+QbfXB+wv2RZ9bunb2PGwCRpL9H3k+RfV"
    "NjdzVL9XdtRGH7j8cK5VXaF94QcrTyzd7h02VmX9YQM5IPnJAfJS5qjF4wAHs6rMvCwOPFD7DED/2tqVZlZkz9btW8mBSPe13kcs"
    "N+4vHE775wmsbrtRjN2nPn2o+GaAlGzjDm4GyH3Lf6Aksr5F/M1JQAREQAREQAREQAREQATk/xAS975O0sw1LtZ6NQeiJR3yTOyO"
    "3Weuscv7zVdR5fJOX4uh5Y7ffe61r/nQag3LZJujS0ZqksHcvShLWjbA3FYAl60VSSYsSxpaNCcbkGSzoxYbSAZEqlrofqllLRCZ"
    "PUeW2t7RcaQuAOy+SEXGvcD8pu8BWV/umTb/G/I0t81nexH2pf6Ul1rWYtyTJkdmz5EjFRn34khdQHjNPiU5Z2R8oLIl9xagOrO/"
    "KFL/nV9QkVkRbQvUAgfeqPbBYePNhZkfKtLw7bvG7obXji+3teTeQtUPT1Od2V8EgVoqMiuYPuOuJEGkoKW6KSBDt96rI2nfokNf"
    "ajbZOAgwVxoGwLmhuTvk9vQ70yGdxyzVTQG52zcW7NZ7dWwcpENfioUUX3IgEcZeaLvTDw5SJGnZ/E9IJ/rKfSe6DHfNfjsIQHVb"
    "a86ltZ8GjHQ4vV4Ze6HtTv/zmB3ZiS6nk4bxt/KkXbWcBfX1RebmxUXflYGR2OZdX7xubrxSX/9min2sXtkJB0+OOgvq64tejS81"
    "QuTI42XJgljMC+1tWBtm3C35KCX2NxE+CN4avUkA3H7k75lB4NB7FjcwK9oRwOwYeVBPFiTsrRwBmsvPa8ati90MlLfHNp+tzDc3"
    "9v1xkZuXi8fPAk8u2Rj2Vo7QvLxKay4/b97QB8rbsR96VE4OZB7Ghb4K7HzUu84Xbni0kGW9e/MA93Qf1iAc6CuXgfs588kTOovd"
    "ablA14+fMi70VXAm+3jRR73rfNN9WIPLevfmRfY+cuw6Bod4ZSogAiIgAiIgAiIgAiIgAiIgAiIgAiIgAiIgAiIg1738C+g4K7BX"
    "RlcsAAAAAElFTkSuQmCC"
)

_SVG = (
    '<svg xmlns="http://www.w3.org/2000/svg" width="{width}" height="{height}" viewBox="0 0 {width} {height}">'
    '<rect width="100%" height="100%" fill="#f3f4f6"/>'
    '<text x="50%" y="50%" text-anchor="middle" font-family="sans-serif" font-size="16" fill="#374151">'
    "{text}</text></svg>"
)


def svg(width: int, height: int, text: str = "Still rendering this chart: reload in a few seconds") -> bytes:
    """A plain SVG of ``width`` x ``height`` pixels saying the chart is still rendering."""
    return _SVG.format(width=width, height=height, text=escape(text)).encode()
