"""A packaged folder in a real browser: headless Chromium (driven by chromedriver through selenium)
opens a page served from localhost by a real HTTP server, which loads transformers.js and
onnxruntime-web's WASM files from js/node_modules and the packaged folder, classifies a few texts
with fp32 and int8 on WASM, and shows the answers; they equal the Python pipeline's. Nothing is
fetched from outside localhost. The page's screenshot is kept (its path is printed and recorded)."""

from __future__ import annotations

import functools
import http.server
import json
import shutil
import threading
from pathlib import Path

import pytest

import distilbert_onnx as dox
from js_helpers import DTYPE_VARIANTS, JS_DIR, NODE_MODULES, TEXTS, TOLERANCE, assert_same, missing_node, package_all, require

pytestmark = pytest.mark.slow
TASK = "text-classification"
OPTIONS = {"top_k": 2}


def missing_browser() -> str | None:
    if shutil.which("chromium") is None or shutil.which("chromedriver") is None:
        return "chromium and chromedriver are not installed (apt-get install chromium chromium-driver)"
    try:
        import selenium  # noqa: F401
    except ImportError:
        return "selenium is not installed (the [test] extra)"
    return None


class QuietHandler(http.server.SimpleHTTPRequestHandler):
    def log_message(self, format, *args):
        pass


@pytest.fixture
def site(exported, tmp_path):
    """A localhost server for the page, transformers.js, onnxruntime-web's files and the packaged
    folder; yields its base URL."""
    root = tmp_path / "site"
    root.mkdir()
    package_all(exported, root / "models", tasks=(TASK,))
    (root / "index.html").symlink_to(JS_DIR / "classify_page.html")
    (root / "transformers").symlink_to(NODE_MODULES / "@huggingface" / "transformers" / "dist")
    (root / "ort").symlink_to(NODE_MODULES / "onnxruntime-web" / "dist")
    job = {"model": TASK, "dtypes": list(DTYPE_VARIANTS), "texts": TEXTS, "options": OPTIONS}
    (root / "job.json").write_text(json.dumps(job), encoding="utf-8")
    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), functools.partial(QuietHandler, directory=str(root)))
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    yield f"http://127.0.0.1:{server.server_address[1]}"
    server.shutdown()
    server.server_close()


@pytest.fixture
def browser(monkeypatch):
    require("the browser check", missing_node() or missing_browser())
    monkeypatch.setenv("SE_OFFLINE", "true")  # selenium never looks for drivers or browsers online
    from selenium import webdriver
    from selenium.webdriver.chrome.service import Service

    options = webdriver.ChromeOptions()
    options.binary_location = shutil.which("chromium")
    for argument in ("--headless=new", "--no-sandbox", "--disable-dev-shm-usage", "--window-size=1100,700",
                     "--disable-background-networking", "--disable-component-update"):
        options.add_argument(argument)
    driver = webdriver.Chrome(service=Service(shutil.which("chromedriver")), options=options)
    yield driver
    driver.quit()


def test_the_browser_classifies_as_the_python_pipeline(site, browser, exported, tmp_path, record_property):
    from selenium.webdriver.support.ui import WebDriverWait

    browser.get(f"{site}/index.html")
    WebDriverWait(browser, 180).until(lambda driver: driver.find_element("tag name", "body").get_attribute("data-state") != "loading")
    screenshot = tmp_path / "transformersjs-page.png"
    browser.save_screenshot(str(screenshot))
    record_property("screenshot", str(screenshot))
    print(f"screenshot of the page: {screenshot}")
    status = browser.find_element("id", "status").text
    assert browser.find_element("tag name", "body").get_attribute("data-state") == "done", status
    assert "WASM" in status
    fetched = browser.execute_script("return performance.getEntriesByType('resource').map(entry => entry.name)")
    assert fetched and all(url.startswith(site) for url in fetched), [url for url in fetched if not url.startswith(site)]
    answers = json.loads(browser.find_element("id", "results").get_attribute("textContent"))
    assert [answer["dtype"] for answer in answers] == list(DTYPE_VARIANTS)
    for answer in answers:
        pipe = dox.load(exported[TASK], variant=DTYPE_VARIANTS[answer["dtype"]])
        assert_same(answer["results"], pipe(TEXTS, **OPTIONS), TOLERANCE["browser", answer["dtype"]], f"browser {answer['dtype']}")
    assert Path(screenshot).stat().st_size > 0
