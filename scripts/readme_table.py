#!/usr/bin/env python3
"""Replaces a generated section of README.md, between `<!-- NAME:begin -->` and
`<!-- NAME:end -->`, with the contents of a file. `make readme` runs it for the stream table
(`greenhouse-extract streams --markdown`) and the configuration reference
(`greenhouse-extract spec --markdown`); tests/generated.rs fails when they drift."""
import sys

readme_path, name, table_path = sys.argv[1], sys.argv[2], sys.argv[3]
begin, end = f"<!-- {name}:begin -->", f"<!-- {name}:end -->"
readme = open(readme_path, encoding="utf-8").read()
table = open(table_path, encoding="utf-8").read()
a, b = readme.index(begin) + len(begin), readme.index(end)
open(readme_path, "w", encoding="utf-8").write(readme[:a] + "\n" + table + readme[b:])
