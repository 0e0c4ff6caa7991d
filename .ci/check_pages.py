"""Open every page of the built book in headless Chromium and fail on broken figures.

A page fails when its JavaScript throws (an uncaught error stops every figure after it)
or when it embeds bokeh figures that never finished rendering. Usage:
``python .ci/check_pages.py book/_build/html [chromium]``.
"""

from __future__ import annotations

import re
import subprocess
import sys
import tempfile
from pathlib import Path

# jupyter-book's thebe launcher declares this constant twice on every page; it breaks nothing.
KNOWN_HARMLESS = ("Identifier 'THEBE_JS_URL' has already been declared",)
CHROMIUM_FLAGS = [
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-quic",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--enable-logging=stderr",
    "--v=0",
    "--virtual-time-budget=10000",
    "--dump-dom",
]


def check(page: Path, chromium: str) -> list[str]:
    with tempfile.TemporaryDirectory() as profile:
        completed = subprocess.run(
            [chromium, *CHROMIUM_FLAGS, f"--user-data-dir={profile}", page.resolve().as_uri()],
            capture_output=True,
            text=True,
            timeout=120,
            check=False,
        )
    console = [line for line in completed.stderr.splitlines() if ":CONSOLE" in line]
    problems = [
        line.split('"')[1] if '"' in line else line
        for line in console
        if "Uncaught" in line and not any(known in line for known in KNOWN_HARMLESS)
    ]
    figures = page.read_text(encoding="utf-8").count("embed_items_notebook")
    rendered = sum(bool(re.search(r"\[bokeh [\d.]+\] document idle", line)) for line in console)
    if figures and not rendered:
        problems.append(f"{figures} bokeh figure block(s) but none finished rendering")
    return problems


def main() -> int:
    html = Path(sys.argv[1] if len(sys.argv) > 1 else "book/_build/html")
    chromium = sys.argv[2] if len(sys.argv) > 2 else "chromium"
    pages = sorted(html.rglob("*.html"))
    pages = [
        page
        for page in pages
        if "_static" not in page.parts and page.name not in ("genindex.html", "search.html")
    ]
    failures = 0
    for page in pages:
        problems = check(page, chromium)
        print(f"{'FAIL' if problems else 'ok  '} {page.relative_to(html)}")
        for problem in problems:
            print(f"       {problem}")
        failures += bool(problems)
    print(f"{len(pages) - failures} of {len(pages)} pages render without errors")
    return 1 if failures else 0


if __name__ == "__main__":
    raise SystemExit(main())
