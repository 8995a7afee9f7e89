"""The search page in a real headless Chromium (Debian's ``chromium`` and ``chromium-driver``, driven by
selenium): a typed query and Enter give the English Upper Lars passage first with both words marked,
a hostile document shows as text, paging and the language filter work from the keyboard, and the query
lives in the URL. Skips with the reason when no browser is installed, unless
``TELUSUR_REQUIRE_BROWSER=1`` (set by ``.ci/run``) makes that a failure."""

from __future__ import annotations

import os
import shutil
from collections.abc import Iterator
from pathlib import Path
from urllib.parse import parse_qs, urlparse

import pytest

from tests.live_server import LiveServer, live_server
from tests.test_serve import UPPER_LARS, XSS, build_index

CHROMIUM = Path(os.environ.get("TELUSUR_CHROMIUM", "/usr/bin/chromium"))
CHROMEDRIVER = Path(os.environ.get("TELUSUR_CHROMEDRIVER", "/usr/bin/chromedriver"))


def _chromium() -> str | None:
    return str(CHROMIUM) if CHROMIUM.exists() else shutil.which("chromium")


def _missing() -> str | None:
    if _chromium() is None:
        return f"no Chromium at {CHROMIUM} (apt-get install chromium chromium-driver)"
    if not CHROMEDRIVER.exists():
        return f"no chromedriver at {CHROMEDRIVER} (apt-get install chromium-driver)"
    try:
        import selenium  # noqa: F401
    except ImportError:
        return "selenium is not installed (pip install -e '.[test]')"
    return None


@pytest.fixture(scope="module")
def browser() -> Iterator:
    reason = _missing()
    if reason is not None:
        if os.environ.get("TELUSUR_REQUIRE_BROWSER") == "1":
            pytest.fail(f"TELUSUR_REQUIRE_BROWSER=1 but {reason}")
        pytest.skip(reason)
    from selenium import webdriver
    from selenium.webdriver.chrome.service import Service

    options = webdriver.ChromeOptions()
    options.binary_location = _chromium()
    for flag in (
        "--headless=new",
        "--no-sandbox",  # CI runs as root, where Chromium's sandbox cannot start
        "--disable-gpu",
        "--disable-dev-shm-usage",
        "--disable-background-networking",
        "--disable-extensions",
        "--disable-sync",
        "--no-first-run",
        "--window-size=1000,760",
    ):
        options.add_argument(flag)
    driver = webdriver.Chrome(service=Service(str(CHROMEDRIVER)), options=options)
    driver.set_page_load_timeout(60)
    try:
        yield driver
    finally:
        driver.quit()


@pytest.fixture(scope="module")
def server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[LiveServer]:
    root = tmp_path_factory.mktemp("page")
    build_index(root / "main")
    build_index(root / "other")
    args = ["--index", f"main={root / 'main'}", "--index", f"other={root / 'other'}", "--quiet"]
    with live_server(root, *args) as live:
        yield live


def wait_for_results(driver, status_prefix: str = "Results"):
    from selenium.webdriver.common.by import By
    from selenium.webdriver.support.ui import WebDriverWait

    WebDriverWait(driver, 30).until(lambda d: d.find_element(By.ID, "status").text.startswith(status_prefix))
    return driver.find_elements(By.CSS_SELECTOR, "#results li.hit")


def test_typed_query_ranks_upper_lars_first_with_both_words_marked(browser, server: LiveServer, tmp_path: Path) -> None:
    from selenium.webdriver.common.by import By
    from selenium.webdriver.common.keys import Keys

    browser.get(server.url + "/")
    box = browser.find_element(By.ID, "q")
    assert browser.switch_to.active_element == box  # focused on load: type straight away
    box.send_keys("Upper Lars", Keys.ENTER)
    hits = wait_for_results(browser)
    first = hits[0]
    assert first.get_attribute("data-doc-id") == UPPER_LARS
    assert first.get_attribute("data-lang") == "en"
    assert [m.text for m in first.find_elements(By.CSS_SELECTOR, ".snippet mark")] == ["Upper", "Lars"]
    assert " ms" in browser.find_element(By.ID, "status").text  # the time taken is shown
    assert parse_qs(urlparse(browser.current_url).query) == {"q": ["Upper Lars"], "index": ["main"]}
    shot = tmp_path / "results.png"
    assert browser.save_screenshot(str(shot)) and shot.stat().st_size > 1000
    # the URL is the result page: open it afresh
    browser.get(browser.current_url)
    assert wait_for_results(browser)[0].get_attribute("data-doc-id") == UPPER_LARS
    assert browser.find_element(By.ID, "q").get_attribute("value") == "Upper Lars"


def test_a_hostile_document_renders_as_text(browser, server: LiveServer) -> None:
    from selenium.webdriver.common.by import By

    browser.get(server.url + "/?q=pwned+onerror+script")
    hits = wait_for_results(browser)
    hostile = [h for h in hits if h.get_attribute("data-doc-id") == "xss"]
    assert hostile, [h.get_attribute("data-doc-id") for h in hits]
    text = hostile[0].find_element(By.CSS_SELECTOR, ".snippet").text
    assert "<script>window.pwned=1</script>" in text and "onerror=" in text
    assert hostile[0].find_element(By.CSS_SELECTOR, "h2").text == "<b>bold?</b>"
    assert browser.execute_script("return window.pwned === undefined")
    assert browser.find_elements(By.CSS_SELECTOR, "#results img, #results script, #results b") == []
    assert XSS.split(" kopi")[0] in text


def test_paging_and_the_language_filter_from_the_keyboard(browser, server: LiveServer) -> None:
    from selenium.webdriver.common.by import By
    from selenium.webdriver.common.keys import Keys
    from selenium.webdriver.support.ui import Select

    browser.get(server.url + "/?q=kopi")
    page1 = wait_for_results(browser, "Results 1–10")
    ranks1 = [h.find_element(By.CSS_SELECTOR, ".info").text.split(".")[0] for h in page1]
    assert ranks1 == [str(i) for i in range(1, 11)]
    nxt = browser.find_element(By.ID, "next")
    nxt.send_keys(Keys.ENTER)  # a focused button activates with the keyboard
    page2 = wait_for_results(browser, "Results 11–20")
    assert [h.find_element(By.CSS_SELECTOR, ".info").text.split(".")[0] for h in page2] == [
        str(i) for i in range(11, 21)
    ]
    assert parse_qs(urlparse(browser.current_url).query)["page"] == ["2"]
    nxt.send_keys(Keys.ENTER)
    page3 = wait_for_results(browser, "Results 21–24")
    assert len(page3) == 4 and not browser.find_element(By.ID, "next").is_enabled()
    browser.back()  # the history holds the pages
    assert len(wait_for_results(browser, "Results 11–20")) == 10
    Select(browser.find_element(By.ID, "lang")).select_by_value("id")
    only_id = wait_for_results(browser, "Results 1–")
    assert only_id and {h.get_attribute("data-lang") for h in only_id} == {"id"}
    assert parse_qs(urlparse(browser.current_url).query)["lang"] == ["id"]
    browser.get(server.url + "/?q=%22Upper+Lars")  # an unreadable query: the server's message, no crash
    wait_for_results(browser, "cannot read the query")


def test_the_index_selector_with_several_indexes(browser, server: LiveServer) -> None:
    from selenium.webdriver.common.by import By
    from selenium.webdriver.support.ui import Select

    browser.get(server.url + "/?q=kopi&index=other")
    assert wait_for_results(browser)
    select = browser.find_element(By.ID, "index")
    assert select.is_displayed()
    assert Select(select).first_selected_option.text == "other"
    assert [o.text for o in Select(select).options] == ["main", "other"]
    link = browser.find_element(By.CSS_SELECTOR, "#results li.hit h2 a").get_attribute("href")
    assert "/v1/indexes/other/docs/" in link
