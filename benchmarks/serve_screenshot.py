"""A screenshot of the page of ``run_ner_predict --serve``: a model served, a text typed and tagged in headless
Chromium (Debian's chromium and chromium-driver, driven by Selenium with the driver's path given, so nothing is
downloaded). ``tests/runtime/test_serve_browser.py`` drives the same browser.

```bash
python benchmarks/serve_screenshot.py --model outputs/5x/onnx/model_int8.onnx --output docs/serve_page_trained.png
```
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))  # run as a script from a checkout
from benchmarks.serve_load import start_server  # noqa: E402

CHROMIUM, CHROMEDRIVER = Path("/usr/bin/chromium"), Path("/usr/bin/chromedriver")
TEXT = ("Germany's Angela Merkel met Emmanuel Macron in Paris on Tuesday, before flying to Brussels for "
        "talks with the European Commission and NATO. Shares in Siemens and Airbus rose 2 percent in Frankfurt.")


def chromium(window_size: str = "1000,760"):
    """Headless Chromium under Selenium, from the Debian paths."""
    from selenium import webdriver

    options = webdriver.ChromeOptions()
    options.binary_location = str(CHROMIUM)
    for argument in ("--headless=new", "--no-sandbox", "--disable-dev-shm-usage", "--disable-gpu",
                     f"--window-size={window_size}", "--lang=en"):
        options.add_argument(argument)
    driver = webdriver.Chrome(options=options, service=webdriver.ChromeService(executable_path=str(CHROMEDRIVER)))
    driver.set_page_load_timeout(20)
    return driver


def screenshot(model: str, text: str, output: Path) -> list[str]:
    """Serve ``model``, tag ``text`` on its page, save the page as ``output``; the highlighted spans, as shown."""
    from selenium.webdriver.common.by import By
    from selenium.webdriver.support.ui import WebDriverWait

    process, port = start_server(model, 5, [])
    browser = chromium()
    try:
        browser.get(f"http://127.0.0.1:{port}/")
        WebDriverWait(browser, 20).until(lambda d: d.find_element(By.ID, "model").text.strip())
        box = browser.find_element(By.ID, "text")
        box.clear()
        box.send_keys(text)
        browser.find_element(By.ID, "submit").click()
        WebDriverWait(browser, 20).until(
            lambda d: d.find_element(By.TAG_NAME, "body").get_attribute("data-state") == "done")
        marks = [f"{mark.find_element(By.CLASS_NAME, 'words').text} [{mark.get_attribute('data-label')}]"
                 for mark in browser.find_elements(By.CSS_SELECTOR, "#result mark.entity")]
        browser.save_screenshot(str(output))
    finally:
        browser.quit()
        process.terminate()
        process.wait(timeout=30)
    return marks


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--model", required=True, help="An .onnx file or a model folder, as run_ner_predict takes.")
    parser.add_argument("--output", required=True, type=Path, help="The PNG to write.")
    parser.add_argument("--text", default=TEXT, help="The text typed into the page.")
    args = parser.parse_args(argv)
    for mark in screenshot(args.model, args.text, args.output):
        print(mark)
    print(f"wrote {args.output}")


if __name__ == "__main__":
    main()
