"""The dashboard end to end in real headless Chromium (Debian's package, driven by Playwright).

Outside CI these tests skip, with the reason, when Playwright or /usr/bin/chromium is
missing; with CI=true they run (``.ci/run`` installs chromium). One browser serves the
whole module. Set JOBIFY_TRIO_SCREENSHOT=1 to refresh docs/_static/dashboard.png.
"""

from __future__ import annotations

import importlib.util
import os
import shutil
from collections.abc import Iterator
from datetime import timedelta
from pathlib import Path
from typing import Any

import pytest
import trio

CHROMIUM = "/usr/bin/chromium"
SCREENSHOT = Path(__file__).parent.parent / "docs" / "_static" / "dashboard.png"
TIMEOUT_MS = 8000


def _missing() -> str | None:
    for module in ("playwright", "starlette", "hypercorn"):
        if importlib.util.find_spec(module) is None:
            return f"{module} is not installed"
    if not Path(CHROMIUM).exists():
        return f"{CHROMIUM} is missing (apt-get install chromium)"
    return None


if (_reason := _missing()) is not None and os.environ.get("CI") != "true":
    pytest.skip(_reason, allow_module_level=True)

from _live_dashboard import LiveDashboard  # noqa: E402
from playwright.sync_api import Browser, Page, expect, sync_playwright  # noqa: E402

from jobify_trio import Jobify, RunHistory, SmartRetry  # noqa: E402

pytestmark = pytest.mark.slow


@pytest.fixture(scope="module")
def browser() -> Iterator[Browser]:
    with sync_playwright() as playwright:
        browser = playwright.chromium.launch(
            executable_path=CHROMIUM,
            headless=True,
            args=["--no-sandbox", "--disable-gpu", "--disable-background-networking"],
        )
        yield browser
        browser.close()


@pytest.fixture
def page(browser: Browser) -> Iterator[Page]:
    context = browser.new_context(viewport={"width": 1360, "height": 820})
    page = context.new_page()
    page.set_default_timeout(TIMEOUT_MS)
    errors: list[str] = []
    page.on("pageerror", lambda exc: errors.append(str(exc)))
    page.on("console", lambda msg: errors.append(msg.text) if msg.type == "error" else None)
    yield page
    context.close()
    # no script error and no CSP violation (the live feed is cut when a test's server stops)
    assert [e for e in errors if "ERR_INCOMPLETE_CHUNKED_ENCODING" not in e] == []


def _app() -> tuple[Jobify, trio.Event]:
    app = Jobify(storage=False, tz="Europe/Berlin")
    RunHistory(app, per_job=20)
    gate = trio.Event()

    @app.task(name="reports.nightly")
    async def nightly(customer: str, *, pages: int = 1) -> str:
        await trio.sleep(0.05)
        return customer

    @app.task(name="inventory.sync")
    async def sync_inventory() -> None:
        pass

    @app.task(
        name="mail.invoice", retry=SmartRetry(3, initial_delay=600, max_delay=3600, jitter=False)
    )
    async def invoice(number: int) -> None:
        raise ConnectionError(f"SMTP server refused invoice #{number}: 421 too many connections")

    @app.task(name="payments.capture")
    async def capture(order: int) -> None:
        raise ValueError(f"card declined for order {order}: insufficient funds")

    @app.task(name="cache.warm")
    async def warm() -> None:
        await gate.wait()

    return app, gate


async def _schedule_demo(app: Jobify) -> None:
    tasks = app.tasks
    await tasks["inventory.sync"].schedule().cron("*/5 * * * *", job_id="inventory-sync")
    await tasks["mail.invoice"].schedule(1042).push(job_id="invoice-1042")
    await tasks["payments.capture"].schedule(7731).push(job_id="capture-7731")
    await tasks["cache.warm"].schedule().push(job_id="cache-warm")
    await tasks["reports.nightly"].schedule("initech").push(job_id="report-initech")
    await tasks["reports.nightly"].schedule("acme", pages=3).push(job_id="report-acme-draft")
    await trio.sleep(0.3)  # the invoice waits for its retry, the capture failed for good


async def _schedule(app: Jobify, job_id: str, delay: timedelta, *args: Any) -> None:
    await app.tasks["reports.nightly"].schedule(*args).delay(delay, job_id=job_id)


def _row(page: Page, section: str, job_id: str) -> Any:
    return page.locator(f"#{section}-body tr[data-job-id='{job_id}']")


def test_live_page_run_now_cancel_and_screenshot(page: Page, tmp_path: Path) -> None:
    app, gate = _app()
    with LiveDashboard(app) as live:
        live.call(_schedule_demo, app)
        page.goto(live.url)
        expect(page.locator("#live-text")).to_have_text("live")
        # a job scheduled after the page loaded appears without a reload
        hostile = "<img src=x onerror=alert(1)>"
        live.call(_schedule, app, "report-acme", timedelta(minutes=42), hostile)
        row = _row(page, "active", "report-acme")
        expect(row).to_contain_text("reports.nightly")
        expect(row).to_contain_text("in 42 min")
        expect(row).to_contain_text(hostile)  # shown as text, never parsed as HTML
        assert page.locator("img").count() == 0
        # failures are red, with their error: a job waiting for its retry, a failed one
        retrying = _row(page, "active", "invoice-1042")
        expect(retrying).to_have_class("job failure")
        expect(retrying.locator(".error")).to_contain_text("ConnectionError: SMTP server refused")
        expect(retrying).to_contain_text("in 10 min")
        failed = _row(page, "finished", "capture-7731")
        expect(failed).to_have_class("job failure")
        expect(failed.locator(".error")).to_contain_text("ValueError: card declined")
        expect(_row(page, "active", "cache-warm")).to_contain_text("running")
        sync = _row(page, "active", "inventory-sync")
        expect(sync).to_contain_text("*/5 * * * *")
        # pause: the paused column and the button change (it stays paused in the screenshot)
        sync.locator("button[data-action='pause']").click()
        expect(sync.locator(".pill.s-paused")).to_have_text("paused")
        expect(sync.locator("button[data-action='resume']")).to_have_count(1)
        expect(page.locator("#toasts")).to_contain_text("inventory-sync paused")
        assert _paused(app, "inventory-sync")
        live.call(_schedule, app, "report-globex", timedelta(hours=3), "globex")
        expect(_row(page, "active", "report-globex")).to_contain_text("in 3.0 h")
        page.wait_for_timeout(300)  # let the fonts and the live dot settle
        page.screenshot(path=str(tmp_path / "dashboard.png"), full_page=True)
        if os.environ.get("JOBIFY_TRIO_SCREENSHOT") == "1":
            shutil.copyfile(tmp_path / "dashboard.png", SCREENSHOT)

        # run now: the job runs at once and its run shows in its history
        row.locator("button[data-action='run']").click()
        done = _row(page, "finished", "report-acme")
        expect(done).to_contain_text("success")
        expect(done.locator(".run.success")).to_have_count(1)
        expect(_row(page, "active", "report-acme")).to_have_count(0)

        # cancel asks for a confirmation click, then the job ends as cancelled
        cancel = _row(page, "active", "report-globex").locator("button[data-action='cancel']")
        cancel.click()
        expect(cancel).to_have_text("Confirm cancel")
        cancel.click()
        expect(_row(page, "finished", "report-globex")).to_contain_text("cancelled")
        expect(page.locator("#toasts")).to_contain_text("report-globex cancelled")
        assert app.find_job("report-globex") is None

        # resume: the job is no longer paused
        sync.locator("button[data-action='resume']").click()
        expect(sync.locator(".pill.s-paused")).to_have_count(0)
        expect(sync.locator("button[data-action='pause']")).to_have_count(1)
        assert not _paused(app, "inventory-sync")
        live.call(_release, gate)


def _paused(app: Jobify, job_id: str) -> bool:
    job = app.find_job(job_id)
    assert job is not None
    return job.paused


async def _release(gate: trio.Event) -> None:
    gate.set()
    await trio.lowlevel.checkpoint()


def test_page_needs_the_token_off_loopback(browser: Browser) -> None:
    app, _ = _app()
    token = "browser-token-123"
    page = browser.new_page()  # (a refused page logs its 403s: no console check here)
    page.set_default_timeout(TIMEOUT_MS)
    with LiveDashboard(app, "127.0.0.2", token=token, require_token=True) as live:
        response = page.goto(live.url)
        assert response is not None
        assert response.status == 403
        expect(page.locator("body")).to_contain_text("needs its token")
        page.goto(f"{live.url}/?token={token}")
        assert page.url == f"{live.url}/"  # the token left the address bar
        expect(page.locator("#live-text")).to_have_text("live")
        page.close()
