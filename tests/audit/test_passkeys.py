"""Passkeys (WebAuthn, django-otp-webauthn) for staff sign-in beside TOTP, in Chromium with a
virtual authenticator (Chrome DevTools' WebAuthn domain): a staff member signed in with a
password and a TOTP code adds a passkey, signs out, signs in with the passkey alone (2FA
required), and a recovery code still gets in."""

import pytest
from django.core.management import call_command
from django_otp.plugins.otp_static.models import StaticToken
from django_otp_webauthn.models import WebAuthnCredential

from audit.models import AuditEntry
from tests.audit.test_sign_in import PASSWORD, _Discard, current_code
from tests.consent.test_browser import CHROMIUM, playwright_or_skip
from tests.factories import StaffFactory
from tests.waiting import wait_until

pytestmark = [pytest.mark.slow, pytest.mark.django_db(transaction=True)]


@pytest.fixture
def chromium(monkeypatch):
    from django.db import connections

    sync_playwright = playwright_or_skip()
    # Playwright's sync API runs an event loop in this thread; the ORM calls between browser
    # steps are plain synchronous ones (see tests/consent/test_browser.py).
    monkeypatch.setenv("DJANGO_ALLOW_ASYNC_UNSAFE", "true")
    with sync_playwright() as playwright:
        browser = playwright.chromium.launch(
            executable_path=str(CHROMIUM),
            args=["--headless", "--no-sandbox", "--disable-gpu", "--disable-background-networking"],
        )
        yield browser
        browser.close()
        connections.close_all()


@pytest.fixture
def passkey_settings(settings, live_server):
    settings.STAFF_REQUIRE_2FA = True
    # pytest-django's live server is at http://localhost:<port>: passkeys are bound to the
    # domain (a bare IP address cannot hold one), and the origin must be the page's.
    settings.OTP_WEBAUTHN_RP_ID = "localhost"
    settings.OTP_WEBAUTHN_ALLOWED_ORIGINS = [live_server.url]
    return settings


def with_virtual_authenticator(context, page):
    """A platform authenticator that keeps passkeys and verifies its user, as a phone or a
    laptop's fingerprint reader does."""
    devtools = context.new_cdp_session(page)
    devtools.send("WebAuthn.enable")
    answer = devtools.send(
        "WebAuthn.addVirtualAuthenticator",
        {
            "options": {
                "protocol": "ctap2",
                "transport": "internal",
                "hasResidentKey": True,
                "hasUserVerification": True,
                "isUserVerified": True,
                "automaticPresenceSimulation": True,
            }
        },
    )
    return devtools, answer["authenticatorId"]


def sign_in_with_password(page, base_url, user, code):
    page.goto(f"{base_url}/admin/login/?next=/admin/")
    page.fill("input[name=username]", user.username)
    page.fill("input[name=password]", PASSWORD)
    page.fill("input[name=otp_token]", code)
    page.click("#login-form [type=submit]")
    page.wait_for_url(f"{base_url}/admin/")


def test_a_passkey_is_enrolled_and_signs_in_alone_and_recovery_codes_still_work(
    chromium, live_server, passkey_settings
):
    # given: an admin enrolled for TOTP and recovery codes
    user = StaffFactory(role="admin")
    user.set_password(PASSWORD)
    user.save()
    call_command("staff_2fa_enrol", user.username, stdout=_Discard())
    base = live_server.url
    context = chromium.new_context()
    page = context.new_page()
    devtools, authenticator = with_virtual_authenticator(context, page)

    # when: signed in with password and TOTP, they add a passkey on their passkeys page
    sign_in_with_password(page, base, user, current_code(user))
    page.goto(f"{base}/admin/passkeys/")
    page.click("#passkey-register-button")
    wait_until(
        lambda: WebAuthnCredential.objects.filter(user=user).exists(),
        timeout=15,
        message="no passkey was registered",
    )
    page.wait_for_selector("#passkey-list td:has-text('never')", timeout=10_000)
    held = devtools.send("WebAuthn.getCredentials", {"authenticatorId": authenticator})
    assert len(held["credentials"]) == 1

    # then: signed out, the passkey alone signs them in, with 2FA required
    signed_in = AuditEntry.objects.filter(action="auth.signed_in", actor=user.username)
    before = signed_in.count()
    page.click("#logout-form [type=submit]")
    page.wait_for_url(f"{base}/admin/logout/")
    page.goto(f"{base}/admin/login/?next=/admin/")
    page.click("#passkey-verification-button")
    page.wait_for_url(f"{base}/admin/", timeout=15_000)
    assert page.locator("#user-tools").inner_text().upper().find(user.username.upper()) >= 0
    assert WebAuthnCredential.objects.get(user=user).last_used_at is not None
    assert signed_in.count() == before + 1
    assert signed_in.first().changes == {"second_factor": "WebAuthnCredential"}

    # and a recovery code still gets in (a new browser without the passkey)
    other = chromium.new_context().new_page()
    recovery = StaticToken.objects.filter(device__user=user).first().token
    sign_in_with_password(other, base, user, recovery)
    assert not StaticToken.objects.filter(token=recovery).exists()


def test_passkey_pages_need_a_signed_in_staff_member(client, passkey_settings):
    response = client.get("/admin/passkeys/")
    assert response.status_code == 302
    assert "/admin/login/" in response["Location"]
    begin = client.post("/webauthn/registration/begin/", content_type="application/json")
    assert begin.status_code in (401, 403)
    assert not WebAuthnCredential.objects.exists()
