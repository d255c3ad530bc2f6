"""Sphinx configuration. Builds offline (no intersphinx fetches); ``nox -s docs`` uses -W."""

from __future__ import annotations

import sys
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

project = "jobify_trio"
author = "jobify_trio developers"
copyright = "2026, jobify_trio developers"
release = "0.1.0"

extensions = ["sphinx.ext.autodoc", "sphinx.ext.viewcode"]
exclude_patterns = ["_build"]
templates_path: list[str] = []

autodoc_member_order = "bysource"
autodoc_typehints = "description"
autodoc_default_options = {"members": True, "show-inheritance": True}
# The package's annotations name trio, attrs and stdlib types; without intersphinx there is
# nothing to link them to, so keep references lenient (nitpicky off).
nitpicky = False
suppress_warnings = ["autodoc.import_object"]

# How-to pages written alongside the features they describe; the index lists those present.
OPTIONAL_HOWTOS = ["cron", "retries", "serialization", "middleware", "durability", "postgres"]


def _list_optional_howtos(app: Any, docname: str, source: list[str]) -> None:
    if docname != "index":
        return
    here = Path(app.srcdir)
    present = [name for name in OPTIONAL_HOWTOS if (here / f"{name}.rst").exists()]
    source[0] = source[0].replace("   |optional-howtos|\n", "".join(f"   {n}\n" for n in present))


def setup(app: Any) -> None:
    app.connect("source-read", _list_optional_howtos)


html_theme = "alabaster"
html_static_path: list[str] = []
