"""The built documentation site works offline: it loads nothing from another host, and MathJax typesets its pages.

The site is the one in ``$MINICNN_SITE_DIR`` (.ci/run builds it, then runs this file), else one
built here with ``mkdocs build --strict`` once per session; without mkdocs (the docs extra is
not installed) every test here is skipped. The browser test needs Debian's ``chromium``
(.ci/run installs it) and is skipped without it: it serves the site on 127.0.0.1 and opens
tutorial 6 with every other host unreachable, as on a machine without a network.
"""

from __future__ import annotations

import functools
import importlib.util
import json
import os
import re
import shutil
import subprocess
import sys
import tempfile
import threading
from html.parser import HTMLParser
from http.server import SimpleHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

import pytest

REPO_ROOT = Path(__file__).resolve().parents[2]
# A URL that names a host: http://, https://, ftp://, or protocol-relative //host/...
ANOTHER_HOST = re.compile(r"^\s*(?:[a-z][a-z0-9+.-]*:)?//", re.IGNORECASE)
CSS_URL = re.compile(r"""(?:url\(\s*['"]?|@import\s+['"])([^'")\s]+)""", re.IGNORECASE)
# <link rel=...> kinds that make the browser fetch something; rel="prev"/"next"/"canonical" do not.
FETCHING_RELS = {"stylesheet", "preload", "modulepreload", "prefetch", "preconnect", "dns-prefetch", "icon", "manifest"}
FETCHING_ATTRIBUTES = {
    "script": "src",
    "img": "src",
    "iframe": "src",
    "source": "src",
    "audio": "src",
    "video": "src",
    "embed": "src",
    "object": "data",
}


@pytest.fixture(scope="session")
def site() -> Path:
    """The built site: $MINICNN_SITE_DIR, or built here (skipped when mkdocs is not installed)."""
    if os.environ.get("MINICNN_SITE_DIR"):
        path = Path(os.environ["MINICNN_SITE_DIR"])
        if not (path / "index.html").is_file():
            pytest.fail(f"MINICNN_SITE_DIR={path} holds no built site (no index.html)")
        return path
    for module in ("mkdocs", "material", "mathjax"):
        if importlib.util.find_spec(module) is None:
            pytest.skip(f"{module} is not installed: the documentation tools come with pip install -e '.[docs]'")
    path = Path(tempfile.mkdtemp(prefix="minicnn-site-"))
    result = subprocess.run(
        [sys.executable, "-m", "mkdocs", "build", "--strict", "--site-dir", str(path)],
        cwd=REPO_ROOT,
        capture_output=True,
        text=True,
        env={**os.environ, "NO_MKDOCS_2_WARNING": "1"},
    )
    assert result.returncode == 0, result.stderr
    return path


class FetchedAddresses(HTMLParser):
    """Every address an HTML page makes the browser fetch: scripts, styles, fonts (via CSS), images, frames."""

    def __init__(self) -> None:
        super().__init__()
        self.addresses: list[str] = []
        self.in_style = False

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        values = {name: value or "" for name, value in attrs}
        if tag in FETCHING_ATTRIBUTES and values.get(FETCHING_ATTRIBUTES[tag]):
            self.addresses.append(values[FETCHING_ATTRIBUTES[tag]])
        if tag == "link" and FETCHING_RELS & set(values.get("rel", "").lower().split()):
            self.addresses.append(values.get("href", ""))
        if values.get("srcset"):
            self.addresses += [part.split()[0] for part in values["srcset"].split(",") if part.strip()]
        if values.get("style"):
            self.addresses += CSS_URL.findall(values["style"])
        self.in_style = tag == "style"

    def handle_endtag(self, tag: str) -> None:
        if tag == "style":
            self.in_style = False

    def handle_data(self, data: str) -> None:
        if self.in_style:
            self.addresses += CSS_URL.findall(data)


def test_no_page_loads_a_script_style_font_or_image_from_another_host(site):
    offenders = []
    pages = sorted(site.rglob("*.html"))
    assert len(pages) > 30  # every page of the nav, not an empty folder
    for page in pages:
        parser = FetchedAddresses()
        parser.feed(page.read_text(errors="replace"))
        name = page.relative_to(site)
        offenders += [f"{name}: {address}" for address in parser.addresses if ANOTHER_HOST.match(address)]
    for stylesheet in sorted(site.rglob("*.css")):  # fonts and imports come in through CSS
        for address in CSS_URL.findall(stylesheet.read_text(errors="replace")):
            if ANOTHER_HOST.match(address):
                offenders.append(f"{stylesheet.relative_to(site)}: {address}")
    assert not offenders, "\n".join(offenders)


def test_the_check_sees_an_address_of_another_host():
    """The parser above finds a CDN script, a font service's stylesheet and a font in inline CSS."""
    parser = FetchedAddresses()
    parser.feed(
        '<script src="https://cdn.jsdelivr.net/npm/mathjax@3/es5/tex-mml-chtml.js"></script>'
        '<link rel="stylesheet" href="//fonts.googleapis.com/css?family=Roboto">'
        "<style>@font-face { src: url(https://fonts.gstatic.com/a.woff2) }</style>"
        '<link rel="next" href="https://example.org/">'  # a link to click: fetched only if the reader clicks
        '<a href="https://kaggle.com">data</a>'
    )
    assert [address for address in parser.addresses if ANOTHER_HOST.match(address)] == [
        "https://cdn.jsdelivr.net/npm/mathjax@3/es5/tex-mml-chtml.js",
        "//fonts.googleapis.com/css?family=Roboto",
        "https://fonts.gstatic.com/a.woff2",
    ]


def test_pages_with_mathematics_load_the_sites_own_mathjax(site):
    page = (site / "tutorials" / "06-convolution-forward" / "index.html").read_text()
    assert 'class="arithmatex"' in page
    assert 'src="../../javascripts/mathjax/tex-mml-chtml.js"' in page
    assert (site / "javascripts" / "mathjax" / "tex-mml-chtml.js").is_file()
    fonts = site / "javascripts" / "mathjax" / "output" / "chtml" / "fonts" / "woff-v2"
    assert len(list(fonts.glob("*.woff"))) > 10


def load_generator():
    spec = importlib.util.spec_from_file_location("make_notebooks", REPO_ROOT / "docs" / "make_notebooks.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def test_every_tutorial_page_links_to_its_notebook_which_is_in_the_site(site):
    make_notebooks = load_generator()
    for page in make_notebooks.pages():
        name = make_notebooks.notebook_name(page)
        html = (site / "tutorials" / page.stem / "index.html").read_text()
        assert f'href="../{name}"' in html, page.name
        assert json.loads((site / "tutorials" / name).read_text()) == make_notebooks.notebook(page)


@pytest.fixture
def served_site(site):
    """The site over HTTP on 127.0.0.1 (an unused port), as mkdocs serve or any web server would give it."""
    handler = functools.partial(QuietHandler, directory=str(site))
    server = ThreadingHTTPServer(("127.0.0.1", 0), handler)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    yield f"http://127.0.0.1:{server.server_address[1]}"
    server.shutdown()
    server.server_close()


class QuietHandler(SimpleHTTPRequestHandler):
    def log_message(self, format: str, *args) -> None:  # noqa: A002 (the standard library's name)
        pass


def test_chromium_typesets_the_mathematics_with_no_network(served_site, tmp_path):
    chromium = shutil.which("chromium")
    if chromium is None:
        pytest.skip("no chromium: .ci/run installs Debian's (apt-get install chromium)")
    command = [
        chromium,
        "--headless",
        "--no-sandbox",
        "--disable-gpu",
        "--disable-quic",
        "--no-first-run",
        "--disable-background-networking",
        "--disable-component-update",
        "--disable-sync",
        f"--user-data-dir={tmp_path / 'profile'}",
        # Every host but this machine's loopback is unreachable: the network is unplugged for the page.
        "--host-resolver-rules=MAP * ~NOTFOUND , EXCLUDE 127.0.0.1",
        "--virtual-time-budget=30000",
        "--dump-dom",
        f"{served_site}/tutorials/06-convolution-forward/",
    ]
    result = subprocess.run(command, capture_output=True, text=True, timeout=180)
    assert result.returncode == 0, result.stderr[-2000:]
    dom = result.stdout
    spans = dom.count('class="arithmatex"')
    assert spans > 20, "tutorial 6 has dozens of formulas; the page did not load"
    # Each formula's span now holds MathJax's output, and no TeX delimiter is left as text.
    assert dom.count("<mjx-container") >= spans
    assert "\\(" not in dom and "\\[" not in dom
