"""The page at / in a real browser: run_ner_predict --serve on a tiny model, headless Chromium driven by Selenium.
A typed sentence, a click (and Ctrl+Enter, keyboard only), and the highlighted spans and labels are those of
POST /predict; the model line shows /health's figures. Needs Debian's chromium and chromium-driver (.ci/run
installs them); without them the test skips. The docs' screenshot of a trained model is
``benchmarks/serve_screenshot.py``'s, in the same browser."""

from __future__ import annotations

import json
import urllib.request

import pytest
from conftest import export_with_tokenizer, make_tiny_bert, require_onnxruntime

from benchmarks import serve_load, serve_screenshot

CHROMIUM, CHROMEDRIVER = serve_screenshot.CHROMIUM, serve_screenshot.CHROMEDRIVER
if not (CHROMIUM.is_file() and CHROMEDRIVER.is_file()):
    pytest.skip(f"{CHROMIUM} or {CHROMEDRIVER} is missing (apt-get install chromium chromium-driver)",
                allow_module_level=True)
pytest.importorskip("fastapi", reason="the http extra: pip install -e './serve[http]'")
webdriver = pytest.importorskip("selenium.webdriver", reason="selenium is in the dev extra")
from selenium.webdriver.common.by import By  # noqa: E402
from selenium.webdriver.common.keys import Keys  # noqa: E402
from selenium.webdriver.support.ui import WebDriverWait  # noqa: E402

pytestmark = pytest.mark.integration  # pytest.ini: still run in CI; -m "not integration" leaves it out

require_onnxruntime()

SENTENCE = "Mara Velden joined Norvane Bank in Port Aldane, and Kofi Mensa spoke in Carrow."
SECOND = "Zoë 😀 met Kofi Mensa in Carrow."  # an emoji: the page slices by code points, as the offsets count


@pytest.fixture(scope="module")
def server(tmp_path_factory):
    run = tmp_path_factory.mktemp("browser") / "run"
    make_tiny_bert(run, seed=3)
    (run / "results.json").write_text(json.dumps({"test_f1": 0.4321, "num_parameters": 54321}), encoding="utf-8")
    model = export_with_tokenizer(run, run / "onnx")
    process, port = serve_load.start_server(model, 5, [])
    try:
        yield f"http://127.0.0.1:{port}"
    finally:
        process.terminate()
        process.wait(timeout=30)


@pytest.fixture(scope="module")
def browser():
    driver = serve_screenshot.chromium()  # the driver's path given: Selenium Manager has nothing to download
    yield driver
    driver.quit()


def predicted(server: str, text: str) -> list[tuple[str, str, int, int, str]]:
    request = urllib.request.Request(f"{server}/predict", data=json.dumps({"text": text}).encode(),
                                     headers={"Content-Type": "application/json"})
    with urllib.request.urlopen(request, timeout=20) as response:
        return [(e["text"], e["label"], e["start"], e["end"], f"{e['label']}, score {e['score']:.4f}")
                for e in json.load(response)["entities"]]


def highlighted(browser) -> list[tuple[str, str, int, int, str]]:
    return [(mark.find_element(By.CLASS_NAME, "words").text, mark.get_attribute("data-label"),
             int(mark.get_attribute("data-start")), int(mark.get_attribute("data-end")), mark.get_attribute("title"))
            for mark in browser.find_elements(By.CSS_SELECTOR, "#result mark.entity")]


def wait_for_result(browser, previous: str | None = None):
    WebDriverWait(browser, 10).until(lambda d: d.find_element(By.TAG_NAME, "body").get_attribute("data-state")
                                     == "done" and d.find_element(By.ID, "result").text != previous)


def test_the_page_highlights_what_predict_returns(server, browser, tmp_path):
    browser.get(server + "/")
    WebDriverWait(browser, 10).until(lambda d: "test F1" in d.find_element(By.ID, "model").text)
    assert "test F1 0.4321" in browser.find_element(By.ID, "model").text
    assert "54,321 parameters" in browser.find_element(By.ID, "model").text
    legend = [item.text for item in browser.find_elements(By.CSS_SELECTOR, "#legend li")]
    assert legend == ["LOC", "MISC", "ORG", "PER"]

    box = browser.find_element(By.ID, "text")
    box.clear()
    box.send_keys(SENTENCE)
    browser.find_element(By.ID, "submit").click()
    wait_for_result(browser)
    marks = highlighted(browser)
    assert marks and marks == predicted(server, SENTENCE)
    assert browser.find_element(By.ID, "result").text.replace("\n", "").startswith(SENTENCE[:4])
    colours = {mark.get_attribute("data-label"): mark.value_of_css_property("background-color")
               for mark in browser.find_elements(By.CSS_SELECTOR, "#result mark.entity")}
    assert len(set(colours.values())) == len(colours)  # one colour per type
    browser.save_screenshot(str(tmp_path / "serve_page.png"))  # the test's artifact, in pytest's tmp_path

    # Keyboard only: the text box, Ctrl+Enter; Tab reaches the button
    before = browser.find_element(By.ID, "result").text
    box.clear()
    box.send_keys(SECOND)
    box.send_keys(Keys.CONTROL, Keys.ENTER)
    wait_for_result(browser, before)
    assert highlighted(browser) == predicted(server, SECOND)
    box.send_keys(Keys.TAB)
    assert browser.switch_to.active_element.get_attribute("id") == "submit"
