"""The dashboard in a real browser (Debian's chromium and chromium-driver, via Selenium),
against `serve --http` as a real process and the real engine: sign in, see the example
jobs, run one now and see its live output, cancel a long run, see both on the timeline;
no console errors; usable on a phone-sized window and by keyboard. The forms' guards
(sign-in, CSRF, read tokens) are checked over plain HTTP too.

Screenshots of the jobs page, a run page and the timeline go to ORCHESTRATOR_SCREENSHOTS
when it is set (docs/screenshots holds docs/http.md's), else to the test's folder.
"""

from __future__ import annotations

import os
import shutil
import time
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import requests

from tests.acceptance.api.conftest import (
    READ_TOKEN,
    WRITE_TOKEN,
    ApiService,
    sign_in,
    start_api_service,
    stop_api_service,
)

ROOT = Path(__file__).resolve().parents[3]
EXAMPLE_JOBS = ("cache-warmer", "heartbeat-server", "hello", "nightly-report")


@pytest.fixture(scope="module")
def site(tmp_path_factory: pytest.TempPathFactory, docker_client: Any) -> Iterator[ApiService]:
    """A service with the repository's example jobs applied at start."""
    folder = tmp_path_factory.mktemp("dashboard")
    service = start_api_service(
        folder,
        f"sqlite:///{folder / 'orchestrator.db'}",
        uuid.uuid4().hex,
        "--jobs",
        str(ROOT / "jobs"),
    )
    yield service
    stop_api_service(service, docker_client)


@pytest.fixture(scope="module")
def browser() -> Iterator[Any]:
    from selenium import webdriver
    from selenium.webdriver.chrome.service import Service

    binary, driver = shutil.which("chromium"), shutil.which("chromedriver")
    if binary is None or driver is None:
        pytest.fail("chromium and chromium-driver are not installed (scripts/test.sh does it)")
    options = webdriver.ChromeOptions()
    options.binary_location = binary
    for argument in ("--headless=new", "--no-sandbox", "--disable-gpu", "--window-size=1280,900"):
        options.add_argument(argument)
    options.set_capability("goog:loggingOptions", {"browser": "ALL"})
    chrome = webdriver.Chrome(options=options, service=Service(driver))
    chrome.implicitly_wait(0)
    yield chrome
    chrome.quit()


def screenshots(tmp_path: Path) -> Path:
    folder = Path(os.environ.get("ORCHESTRATOR_SCREENSHOTS") or tmp_path)
    folder.mkdir(parents=True, exist_ok=True)
    return folder


def wait_until(browser: Any, condition: Any, timeout: float = 60, what: str = "") -> Any:
    deadline = time.monotonic() + timeout
    while True:
        try:
            value = condition()
        except Exception:  # the page is changing under us: ask again
            value = None
        if value:
            return value
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out waiting for {what} on {browser.current_url}")
        time.sleep(0.2)


def console_errors(browser: Any) -> list[str]:
    return [entry["message"] for entry in browser.get_log("browser") if entry["level"] == "SEVERE"]


def browser_sign_in(browser: Any, site: ApiService, token: str) -> None:
    from selenium.webdriver.common.by import By

    browser.delete_all_cookies()
    browser.get(site.url + "/jobs")
    wait_until(browser, lambda: "/signin" in browser.current_url, what="the sign-in page")
    field = browser.find_element(By.ID, "token")
    field.send_keys(token)
    field.submit()
    wait_until(browser, lambda: browser.current_url.endswith("/jobs"), what="the jobs page")


def row_button(browser: Any, job: str, label: str) -> Any:
    from selenium.webdriver.common.by import By

    row = browser.find_element(By.CSS_SELECTOR, f'tr[data-job="{job}"]')
    return next(b for b in row.find_elements(By.TAG_NAME, "button") if b.text == label)


def test_run_now_live_output_cancel_and_the_timeline(
    site: ApiService, browser: Any, tmp_path: Path
) -> None:
    from selenium.webdriver.common.by import By

    quick, slow = f"hello-{uuid.uuid4().hex[:4]}", f"long-{uuid.uuid4().hex[:4]}"
    site.apply(
        f"name: {quick}\nschedule: '0 0 1 1 *'\nimage: IMAGE\n"
        "command: ['sh', '-c', 'for i in 1 2 3 4; do echo line $i; sleep 1; done']\n"
        "---\n"
        f"name: {slow}\nschedule: '0 0 1 1 *'\nimage: IMAGE\ncommand: ['sleep', '300']\n"
    )
    browser_sign_in(browser, site, WRITE_TOKEN)
    names = {
        row.get_attribute("data-job")
        for row in browser.find_elements(By.CSS_SELECTOR, "tr[data-job]")
    }
    assert set(EXAMPLE_JOBS) | {quick, slow} <= names
    # Times are shown in the browser's zone, with the job's zone and UTC on hover.
    first_time = browser.find_element(By.CSS_SELECTOR, 'tr[data-job="nightly-report"] time')
    assert "Europe/Berlin" in first_time.get_attribute("title")
    assert "UTC:" in first_time.get_attribute("title")

    # Run now: the run's page follows its output live, then shows its end.
    row_button(browser, quick, "Run now").click()
    wait_until(browser, lambda: "/runs/" in browser.current_url, what="the run page")
    log = lambda: browser.find_element(By.ID, "log").text  # noqa: E731
    wait_until(browser, lambda: "line 2" in log() and "line 4" not in log(), 30, "live output")
    wait_until(
        browser,
        lambda: "succeeded" in browser.find_element(By.ID, "run-status").text,
        30,
        "the end",
    )
    # Then the page shows the run as recorded: its duration, its exit code.
    duration = lambda: browser.find_element(By.ID, "run-duration").text  # noqa: E731
    wait_until(browser, lambda: duration().endswith("s"), 10, "the recorded run")
    assert log().split() == ["line", "1", "line", "2", "line", "3", "line", "4"]
    assert browser.find_element(By.ID, "run-exit").text == "0"
    quick_run = int(browser.current_url.rsplit("/", 1)[1])
    browser.save_screenshot(str(screenshots(tmp_path) / "run.png"))

    # A long run, cancelled from its page, ends cancelled.
    browser.get(site.url + "/jobs")
    row_button(browser, slow, "Run now").click()
    wait_until(browser, lambda: "/runs/" in browser.current_url, what="the long run's page")
    slow_run = int(browser.current_url.rsplit("/", 1)[1])
    site.wait_run(slow_run, ("running",))
    browser.refresh()
    browser.find_element(By.CSS_SELECTOR, "button.cancel").click()
    wait_until(
        browser,
        lambda: "cancelled" in browser.find_element(By.ID, "run-status").text,
        30,
        "the run cancelled",
    )
    assert site.get(f"/api/runs/{slow_run}").json()["status"] == "cancelled"

    # The timeline shows both.
    browser.get(site.url + "/timeline")
    bars = {el.get_attribute("data-run") for el in browser.find_elements(By.CSS_SELECTOR, "a.bar")}
    assert {str(quick_run), str(slow_run)} <= bars
    browser.save_screenshot(str(screenshots(tmp_path) / "timeline.png"))
    # The jobs page shows each job's recent runs as a strip.
    browser.get(site.url + "/jobs")
    strip = browser.find_elements(By.CSS_SELECTOR, f'tr[data-job="{quick}"] .strip a')
    assert [a.get_attribute("href").rsplit("/", 1)[1] for a in strip] == [str(quick_run)]
    browser.save_screenshot(str(screenshots(tmp_path) / "jobs.png"))
    assert console_errors(browser) == []


def wider_than_the_window(browser: Any) -> list[str]:
    return list(
        browser.execute_script(
            """const out = [];
            for (const el of document.querySelectorAll("body *")) {
              const box = el.getBoundingClientRect();
              if (box.right > window.innerWidth + 1 && !el.closest(".table-wrap"))
                out.push(el.tagName + "." + el.className + " " + Math.round(box.right));
            }
            return [window.innerWidth].concat(out.slice(0, 6));"""
        )
    )


def test_pages_fit_a_phone_and_work_by_keyboard(site: ApiService, browser: Any) -> None:
    from selenium.webdriver.common.by import By
    from selenium.webdriver.common.keys import Keys

    browser_sign_in(browser, site, WRITE_TOKEN)
    browser.set_window_size(390, 844)
    wait_until(browser, lambda: browser.execute_script("return window.innerWidth") <= 400)
    try:
        for path in ("/jobs", "/runs", "/timeline"):
            browser.get(site.url + path)
            overflow = browser.execute_script(
                "return document.documentElement.scrollWidth - window.innerWidth"
            )
            assert overflow <= 1, (path, overflow, wider_than_the_window(browser))
        browser.get(site.url + "/jobs")
        browser.find_element(By.TAG_NAME, "body").send_keys(Keys.TAB)
        assert browser.switch_to.active_element.text == "Skip to content"
        # Tab on to the first "Run now" and press it with the keyboard.
        for _ in range(60):
            browser.switch_to.active_element.send_keys(Keys.TAB)
            if browser.switch_to.active_element.text == "Run now":
                break
        else:
            raise AssertionError("no Run now button could be reached by Tab")
        browser.switch_to.active_element.send_keys(Keys.ENTER)
        wait_until(
            browser, lambda: "/runs/" in browser.current_url, what="a run started by keyboard"
        )
    finally:
        browser.set_window_size(1280, 900)
    assert console_errors(browser) == []


def test_a_read_token_sees_no_write_buttons(site: ApiService, browser: Any) -> None:
    from selenium.webdriver.common.by import By

    browser_sign_in(browser, site, READ_TOKEN)
    assert browser.find_elements(By.CSS_SELECTOR, "tr[data-job]")
    assert browser.find_elements(By.CSS_SELECTOR, "button.run-now") == []
    assert browser.find_elements(By.CSS_SELECTOR, "a.run-now") == []
    assert "read only" in browser.find_element(By.CLASS_NAME, "who").text
    assert console_errors(browser) == []


# --- the guards, over plain HTTP --------------------------------------------------------------


def signed_in(site: ApiService, token: str) -> requests.Session:
    session, answer = sign_in(site.url, token)
    assert answer.status_code == 303
    cookie = answer.headers["set-cookie"].lower()
    assert "httponly" in cookie and "samesite=strict" in cookie
    return session


def test_a_wrong_token_does_not_sign_in(site: ApiService) -> None:
    _, answer = sign_in(site.url, "nope" * 5)
    assert answer.status_code == 401 and "not known" in answer.text
    assert "set-cookie" not in answer.headers


def test_pages_need_sign_in_and_next_cannot_leave_the_site(site: ApiService) -> None:
    answer = requests.get(site.url + "/runs", allow_redirects=False)
    assert answer.status_code == 303 and answer.headers["location"] == "/signin?next=/runs"
    for target in ("//evil.example/x", "https://evil.example", "/\\evil.example"):
        _, answer = sign_in(site.url, WRITE_TOKEN, target)
        assert answer.headers["location"] == "/jobs", target


def test_writes_from_pages_need_the_form_token(site: ApiService) -> None:
    site.apply("name: guarded\nschedule: '0 0 1 1 *'\nimage: IMAGE\ncommand: ['true']\n")
    session = signed_in(site, WRITE_TOKEN)
    # A form posted from another site carries no matching form token: refused, no run.
    before = len(site.get("/api/runs", params={"job": "guarded"}).json())
    forged = session.post(
        site.url + "/jobs/guarded/run", data={"csrf": "0" * 64}, allow_redirects=False
    )
    assert forged.status_code == 403 and "expired or came from elsewhere" in forged.text
    missing = session.post(site.url + "/jobs/guarded/disable", allow_redirects=False)
    assert missing.status_code == 403
    assert len(site.get("/api/runs", params={"job": "guarded"}).json()) == before
    assert site.get("/api/jobs/guarded").json()["enabled"] is True
    # The API never takes the cookie for a write.
    assert session.post(site.url + "/api/jobs/guarded/disable").status_code == 401
    # With the page's own form token the write goes through.
    token = form_token(session.get(site.url + "/jobs").text)
    done = session.post(
        site.url + "/jobs/guarded/disable",
        data={"csrf": token, "back": "/jobs"},
        allow_redirects=False,
    )
    assert done.status_code == 303
    assert site.get("/api/jobs/guarded").json()["enabled"] is False
    actors = [e["actor"] for e in site.get("/api/audit").json() if e["target"] == "guarded"]
    assert actors[0] == "web:alice"


def form_token(page: str) -> str:
    return page.split('<meta name="csrf" content="', 1)[1].split('"', 1)[0]


def test_a_read_token_cannot_write_through_a_page(site: ApiService) -> None:
    site.apply("name: read-only\nschedule: '0 0 1 1 *'\nimage: IMAGE\ncommand: ['true']\n")
    session = signed_in(site, READ_TOKEN)
    page = session.get(site.url + "/jobs").text
    assert "run-now" not in page
    # Even with the form token of its own cookie, a read token may not write.
    answer = session.post(
        site.url + "/jobs/read-only/disable",
        data={"csrf": form_token(page), "back": "/jobs"},
        allow_redirects=False,
    )
    assert answer.status_code == 403 and "may only read" in answer.text
    assert site.get("/api/jobs/read-only").json()["enabled"] is True


def test_bad_filters_and_unknown_runs_are_pages_not_500s(site: ApiService) -> None:
    session = signed_in(site, READ_TOKEN)
    for path, status in [
        ("/runs?since=yesterday", 400),
        ("/runs?status=sleeping", 400),
        ("/runs?before=-3", 400),
        ("/runs/999999999", 404),
        ("/runs/abc", 400),
        ("/jobs?status=odd&q=%00", 200),
    ]:
        answer = session.get(site.url + path)
        assert answer.status_code == status, (path, answer.text[:300])
        assert "Traceback" not in answer.text
