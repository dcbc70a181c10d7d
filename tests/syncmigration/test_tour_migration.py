"""The README's migration tour on `make run`'s stack and demo data, in Chromium: an admin plans a
move of every company to two custom products, reads the dry run, starts it, sees client-level
schedules switched off (no company left at dual-sync risk while step 2 waits), then rolls back
and finds every company in the mode it was in before. TOUR_SCREENSHOTS=1 writes the README's
docs/screenshots/admin-migration-{plan,run}.png."""

import re

import pytest

from tests.portal.devstack_process import running_devstack
from tests.portal.test_tour import SCREEN, browser, screenshot  # noqa: F401 (browser: the fixture)
from tests.waiting import wait_until

pytestmark = pytest.mark.slow

# Custom products of the demo catalogue (portal/demo.py): the ones a migration moves to.
PRODUCTS = ["Cash-flow monitoring", "Invoice finance"]


def _modes(page, sync_settings_url: str) -> str:
    """The sync settings page's count of companies by mode, once Codat's settings are read."""

    def read() -> bool:
        page.goto(sync_settings_url)
        return page.locator("#sync-modes").count() == 1

    wait_until(read, timeout=60, interval=1, message="the sync settings were never read")
    return page.inner_text("#sync-modes")


def _reload_until(page, check, *, timeout=90, message="") -> None:
    def shown() -> bool:
        page.reload()
        return check()

    wait_until(shown, timeout=timeout, interval=1.0, message=message)


def test_the_migration_tour_on_make_runs_demo_data(tmp_path, browser):  # noqa: F811
    with running_devstack(tmp_path) as stack:
        admin = stack.admin_url
        username, password = stack.login
        page = browser.new_context(viewport=SCREEN, locale="en-GB").new_page()
        page.goto(admin + "login/")
        page.fill("#id_username", username)
        page.fill("#id_password", password)
        page.click("input[type=submit]")
        page.wait_for_url(admin)

        sync_settings = admin + "syncsettings/clientsyncsettings/"
        modes_before = _modes(page, sync_settings)
        assert re.search(r"Dual-sync risk: [1-9]", modes_before), modes_before

        # Plan: every company, the two custom products, a fifth of them first.
        page.goto(admin + "syncmigration/migrationrun/add/")
        page.select_option("select[name=scope_kind]", "all")
        page.select_option("select[name=products]", label=PRODUCTS)
        page.fill("input[name=canary_percent]", "20")
        page.click("#content form [type=submit]")
        page.wait_for_url(re.compile(r".*/syncmigration/migrationrun/\d+/change/$"))
        content = page.inner_text("#content")
        assert "Planned (nothing sent yet)" in content, content
        assert "The plan (dry run)" in content
        assert "30 companies in scope; canary cohort: 6." in content, content
        screenshot(page, "admin-migration-plan")

        # Start: step 1 switches client-level schedules off, then step 2 waits.
        with page.expect_navigation():
            page.get_by_role("button", name="Start the migration").click()
        _reload_until(
            page,
            lambda: "Step 2: waiting" in page.inner_text("#content"),
            message="the run never reached step 2's wait",
        )
        content = page.inner_text("#content")
        assert "client-level settings disabled" in content, content
        assert re.search(r"left \(until \d{4}-\d\d-\d\d", content), content
        screenshot(page, "admin-migration-run")
        run_url = page.url

        def no_dual_sync_risk() -> bool:
            page.goto(sync_settings)
            return "Dual-sync risk: 0" in page.inner_text("#sync-modes")

        wait_until(
            no_dual_sync_risk, timeout=60, interval=1, message="client-level schedules still read"
        )

        # Roll back: Codat's settings as they were, so each company is in its old mode again.
        page.goto(run_url)
        page.fill("#content input[name=reason]", "Trying the rollback on the demo")
        with page.expect_navigation():
            page.get_by_role("button", name="Roll back the steps done").click()
        _reload_until(
            page,
            lambda: re.search(r"Sync migration #\d+: Rolled back", page.inner_text("#content")),
            message="the rollback never finished",
        )
        assert "restored from the snapshot" in page.inner_text("#content")

        def modes_as_before() -> bool:
            return _modes(page, sync_settings) == modes_before

        wait_until(modes_as_before, timeout=60, interval=1, message="modes differ after rollback")
