"""Open every page of the built book in headless Chromium and fail on what a reader would meet.

A page fails when
- its JavaScript throws (an uncaught error stops every figure after it), or it embeds bokeh
  figures that never finished rendering;
- an exercise's solution does not toggle: collapsed when the page opens, shown after a click on
  its button (sphinx-exercise with sphinx-togglebutton);
- a code cell is wider than the column (its ``pre`` scrolls sideways, or reaches past the column's
  edge; collapsed cells are opened first; a full-width cell's output may use the margin), or a
  ``{glue:...}`` reference was left unfilled;
- the results explorer's filters do not filter its table (JavaScript callbacks, no kernel);
- an internal link points to a missing file or a missing anchor (checked without a browser).

The in-browser checks run a probe script injected into a temporary copy of each page (beside it,
so relative links resolve); Chromium's ``--dump-dom`` returns the DOM with the probe's findings.
Usage: ``python .ci/check_pages.py book/_build/html [chromium]``.
"""

from __future__ import annotations

import html as html_lib
import json
import re
import subprocess
import sys
import tempfile
from pathlib import Path
from urllib.parse import unquote, urlsplit

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
    "--window-size=1280,900",
    "--virtual-time-budget=15000",
    "--dump-dom",
]
RESULT_ID = "ci-page-check"
PROBE = """
<script>
(function () {
  function visible(el) { return !!(el && el.getClientRects().length && el.offsetHeight > 0); }
  function solutionBody(sol) {
    return Array.from(sol.children).filter(function (c) {
      return !c.classList.contains("admonition-title") && !c.classList.contains("toggle-button")
        && c.tagName !== "BUTTON" && !c.classList.contains("toggle-hidden-placeholder");
    });
  }
  function probe() {
    var report = {solutions: 0, toggle_failures: [], wide_code: [], unfilled_glue: []};
    document.querySelectorAll("div.solution").forEach(function (sol, i) {
      report.solutions += 1;
      var name = (sol.id || ("solution " + (i + 1)));
      var body = solutionBody(sol);
      var before = body.some(visible);
      var button = sol.querySelector("button.toggle-button") || sol.querySelector(".admonition-title");
      if (!button) { report.toggle_failures.push(name + ": no toggle button"); return; }
      button.click();
      var after = solutionBody(sol).some(visible);
      if (before) report.toggle_failures.push(name + ": shown before any click");
      if (!after) report.toggle_failures.push(name + ": still hidden after a click");
    });
    document.querySelectorAll("details").forEach(function (d) { d.open = true; });
    var article = document.querySelector("article") || document.body;
    var right = article.getBoundingClientRect().right;
    document.querySelectorAll("div.cell_input pre, div.highlight pre").forEach(function (pre) {
      if (!visible(pre)) return;
      var first = (pre.textContent || "").trim().split("\\n")[0].slice(0, 60);
      if (pre.scrollWidth > pre.clientWidth + 2) {
        report.wide_code.push(first + " (" + pre.scrollWidth + " > " + pre.clientWidth + " px)");
      } else if (!pre.closest(".cell_output") && pre.getBoundingClientRect().right > right + 2) {
        report.wide_code.push(first + " (reaches " + Math.round(pre.getBoundingClientRect().right)
          + " px; the column ends at " + Math.round(right) + " px)");
      }
    });
    var prose = document.body.cloneNode(true);  // code may show glue syntax literally
    prose.querySelectorAll("code, pre, script, style").forEach(function (c) { c.remove(); });
    var text = prose.textContent || "";
    var glue = text.match(/\\{glue(:[a-z]+)?\\}`[^`]*`/g) || [];
    report.unfilled_glue = glue.slice(0, 5);
    explorer(report, function () {
      var out = document.createElement("pre");
      out.id = "%s";
      out.textContent = JSON.stringify(report);
      document.body.appendChild(out);
    });
  }
  // The results explorer's filters are JavaScript callbacks: pick a notebook, then type part of a
  // record's name, and check that the table shows only matching rows.
  function explorer(report, done) {
    var shown = null, select = null, name = null;
    (window.Bokeh && Bokeh.documents || []).forEach(function (d) {
      var s = d.get_model_by_name("explorer_shown");
      if (!s) return;
      shown = s;
      d.all_models.forEach(function (m) {
        if (m.title === "notebook" && m.options) select = m;
        if (m.title === "record name contains") name = m;
      });
    });
    if (!shown) { done(); return; }
    report.explorer = "";
    var total = shown.data.name.length;
    if (!select || !name || select.options.length < 2 || !total) {
      report.explorer = "the explorer has no filters or no records"; done(); return;
    }
    var notebook = select.options[1];
    select.value = notebook;
    setTimeout(function () {
      var rows = shown.data.notebook;
      if (!rows.length || rows.some(function (n) { return n !== notebook; })) {
        report.explorer = "the notebook filter did not select " + notebook;
        done(); return;
      }
      var first = shown.data.name[0];
      name.value_input = first;
      setTimeout(function () {
        var names = shown.data.name;
        if (!names.length || names.some(function (n) { return n.indexOf(first) < 0; })) {
          report.explorer = "the name filter did not select " + first;
        }
        done();
      }, 1000);
    }, 1000);
  }
  window.addEventListener("load", function () { setTimeout(probe, 4000); });
})();
</script>
""".replace("%s", RESULT_ID)


def check(page: Path, chromium: str) -> list[str]:
    """Problems a reader would meet on ``page`` (empty if none), found in headless Chromium."""
    source = page.read_text(encoding="utf-8")
    at = source.rfind("</body>")  # the last one: bokeh's inlined JavaScript holds the string too
    probed = source[:at] + PROBE + source[at:] if at >= 0 else source + PROBE
    copy = page.with_name(f".ci-check-{page.name}")
    copy.write_text(probed, encoding="utf-8")
    try:
        with tempfile.TemporaryDirectory() as profile:
            completed = subprocess.run(
                [chromium, *CHROMIUM_FLAGS, f"--user-data-dir={profile}", copy.resolve().as_uri()],
                capture_output=True,
                text=True,
                timeout=180,
                check=False,
            )
    finally:
        copy.unlink(missing_ok=True)
    console = [line for line in completed.stderr.splitlines() if ":CONSOLE" in line]
    problems = [
        line.split('"')[1] if '"' in line else line
        for line in console
        if "Uncaught" in line and not any(known in line for known in KNOWN_HARMLESS)
    ]
    figures = source.count("embed_items_notebook")
    rendered = sum(bool(re.search(r"\[bokeh [\d.]+\] document idle", line)) for line in console)
    if figures and not rendered:
        problems.append(f"{figures} bokeh figure block(s) but none finished rendering")
    match = re.search(rf'<pre id="{RESULT_ID}">(.*?)</pre>', completed.stdout, flags=re.S)
    if match is None:
        problems.append("the page probe did not report (the page never finished loading)")
        return problems
    report = json.loads(html_lib.unescape(match.group(1)))
    problems += [f"solution toggle: {failure}" for failure in report["toggle_failures"]]
    problems += [f"code wider than the column: {line}" for line in report["wide_code"]]
    problems += [f"unfilled glue: {text}" for text in report["unfilled_glue"]]
    if report.get("explorer"):
        problems.append(f"results explorer: {report['explorer']}")
    return problems


_HREF = re.compile(r"""<a\s[^>]*?href="([^"]+)\"""")
_ID = re.compile(r"""\sid="([^"]+)\"""")
_SCRIPT = re.compile(r"<script\b.*?</script>", flags=re.S | re.I)


def _markup(page: Path) -> str:
    """The page without its scripts (inlined JavaScript holds strings that look like links)."""
    return _SCRIPT.sub("", page.read_text(encoding="utf-8", errors="replace"))


def internal_link_problems(html_dir: Path, pages: list[Path]) -> dict[Path, list[str]]:
    """Per page, the internal links whose file or anchor does not exist in the built book."""
    ids: dict[Path, set[str]] = {}

    def anchors(target: Path) -> set[str]:
        if target not in ids:
            ids[target] = set(_ID.findall(_markup(target)))
        return ids[target]

    problems: dict[Path, list[str]] = {}
    for page in pages:
        for href in sorted(set(_HREF.findall(_markup(page)))):
            href = html_lib.unescape(href)
            parts = urlsplit(href)
            if parts.scheme or parts.netloc or href.startswith(("mailto:", "javascript:", "data:")):
                continue
            target = (page.parent / unquote(parts.path)).resolve() if parts.path else page.resolve()
            if target.is_dir():
                target = target / "index.html"
            where = f"{href}"
            if not target.is_file():
                problems.setdefault(page, []).append(f"broken link {where}: no file {target}")
            elif (
                parts.fragment and target.suffix == ".html" and unquote(parts.fragment) not in anchors(target)
            ):
                problems.setdefault(page, []).append(f"broken link {where}: no anchor #{parts.fragment}")
    return problems


def main() -> int:
    html = Path(sys.argv[1] if len(sys.argv) > 1 else "book/_build/html")
    chromium = sys.argv[2] if len(sys.argv) > 2 else "chromium"
    pages = sorted(html.rglob("*.html"))
    pages = [
        page
        for page in pages
        if "_static" not in page.parts
        and not page.name.startswith(".ci-check-")
        and page.name not in ("genindex.html", "search.html", "py-modindex.html")
    ]
    pages = [page for page in pages if 'http-equiv="Refresh"' not in page.read_text(encoding="utf-8")[:2000]]
    links = internal_link_problems(html, pages)
    failures = 0
    solutions = 0
    for page in pages:
        problems = links.get(page, []) + check(page, chromium)
        print(f"{'FAIL' if problems else 'ok  '} {page.relative_to(html)}")
        for problem in problems:
            print(f"       {problem}")
        failures += bool(problems)
        solutions += page.read_text(encoding="utf-8").count('class="solution')
    print(f"{len(pages) - failures} of {len(pages)} pages pass ({solutions} exercise solutions toggled)")
    return 1 if failures else 0


if __name__ == "__main__":
    raise SystemExit(main())
