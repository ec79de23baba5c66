"""Sphinx configuration for the pytest-trio-groups documentation."""

project = "pytest-trio-groups"
author = "The pytest-trio-groups developers"
copyright = "The pytest-trio-groups developers"
release = "0.1.0"
version = "0.1"

extensions: list[str] = []

root_doc = "index"
exclude_patterns = ["_build"]
highlight_language = "python3"

html_theme = "alabaster"
html_title = "pytest-trio-groups 0.1.0"
