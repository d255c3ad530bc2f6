"""Refresh the intersphinx inventories the docs build reads offline.

``docs/conf.py`` links Python and trio names to their real documentation sites, but reads
the inventories (``objects.inv``) from this folder, so the build needs no network. Run this
on a machine with network access, rebuild the docs, and commit the new files::

    python docs/_inv/refresh.py

It downloads each site's ``objects.inv`` and checks it is a Sphinx inventory before
replacing the file. The files shipped were made from Python 3.11's documentation (Debian's
``python3.11-doc``) and from trio 0.35.0's documentation source, built with Sphinx.
"""

from __future__ import annotations

import sys
import urllib.request
import zlib
from pathlib import Path

HERE = Path(__file__).resolve().parent

# file name -> documentation site; keep in step with intersphinx_mapping in docs/conf.py
SITES = {
    "python.inv": "https://docs.python.org/3",
    "trio.inv": "https://trio.readthedocs.io/en/stable",
}


def check_inventory(data: bytes) -> str:
    """The project line of a version-2 Sphinx inventory; ValueError for anything else."""
    lines = data.split(b"\n", 4)
    if len(lines) < 5 or lines[0] != b"# Sphinx inventory version 2":
        raise ValueError("not a Sphinx inventory (version 2)")
    zlib.decompress(lines[4])  # the object table must decompress
    return lines[1].decode().removeprefix("# Project: ")


def main() -> int:
    for name, site in SITES.items():
        with urllib.request.urlopen(f"{site}/objects.inv", timeout=60) as response:
            data = response.read()
        project = check_inventory(data)
        (HERE / name).write_bytes(data)
        print(f"{name}: {project} from {site} ({len(data)} bytes)")
    return 0


if __name__ == "__main__":
    sys.exit(main())
