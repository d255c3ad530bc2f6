"""The package metadata says what the project is: license file, classifiers, doc paths."""

from __future__ import annotations

import tomllib
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
PROJECT = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]


def test_license_file_matches_the_declared_license() -> None:
    assert PROJECT["license"] == "MIT"
    assert PROJECT["license-files"] == ["LICENSE"]
    text = (ROOT / "LICENSE").read_text()
    assert text.startswith("MIT License\n")
    assert "jobify_trio contributors" in text
    assert "License :: OSI Approved :: MIT License" in PROJECT["classifiers"]


def test_classifiers_name_the_framework_typing_and_python_versions() -> None:
    classifiers = set(PROJECT["classifiers"])
    assert {"Framework :: Trio", "Typing :: Typed"} <= classifiers
    minimum = PROJECT["requires-python"].removeprefix(">=")
    assert minimum == "3.11"
    versions = {c.rsplit(" :: ", 1)[1] for c in classifiers if c.count(".") == 1}
    assert {"3.11", "3.12", "3.13"} <= versions


def test_project_urls_point_at_docs_that_exist() -> None:
    urls = PROJECT["urls"]
    assert "Documentation" in urls
    for target in urls.values():
        assert (ROOT / target).is_file(), target  # repository paths until there is a website
