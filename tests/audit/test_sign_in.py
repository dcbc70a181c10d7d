"""Staff sign-in (issue 17): with two-factor sign-in required, a password alone is refused and
a TOTP code or a recovery code gets in; twenty wrong passwords lock the account, and the lock
is in the audit trail."""

import pytest
from django.core.management import call_command
from django.urls import reverse
from django_otp.oath import TOTP
from django_otp.plugins.otp_static.models import StaticToken
from django_otp.plugins.otp_totp.models import TOTPDevice

from audit.models import AuditEntry
from tests.factories import StaffFactory

pytestmark = pytest.mark.django_db

PASSWORD = "correct horse battery staple"
LOGIN = "admin:login"
INDEX = "admin:index"


@pytest.fixture
def staff():
    user = StaffFactory(role="operator")
    user.set_password(PASSWORD)
    user.save()
    return user


@pytest.fixture
def enrolled(staff):
    call_command("staff_2fa_enrol", staff.username, stdout=_Discard())
    return staff


class _Discard:
    def write(self, text):
        pass


def current_code(user) -> str:
    device = TOTPDevice.objects.get(user=user)
    totp = TOTP(device.bin_key, device.step, device.t0, device.digits, device.drift)
    return f"{totp.token():0{device.digits}d}"


def sign_in(client, user, password=PASSWORD, **extra):
    return client.post(reverse(LOGIN), {"username": user.username, "password": password, **extra})


def in_the_admin(client) -> bool:
    return client.get(reverse(INDEX)).status_code == 200


def test_with_2fa_required_a_password_alone_is_refused(client, settings, enrolled):
    settings.STAFF_REQUIRE_2FA = True

    response = sign_in(client, enrolled)

    assert response.status_code == 200  # the form again, with the reason
    assert "Please enter your OTP token" in response.content.decode()
    assert not in_the_admin(client)


def test_with_2fa_required_a_wrong_code_is_refused_and_recorded(client, settings, enrolled):
    settings.STAFF_REQUIRE_2FA = True

    sign_in(client, enrolled, otp_token="000000" if current_code(enrolled) != "000000" else "1")

    assert not in_the_admin(client)
    assert AuditEntry.objects.get(action="auth.second_factor_failed").actor == enrolled.username


def test_with_2fa_required_an_account_without_a_second_factor_cannot_sign_in(
    client, settings, staff
):
    settings.STAFF_REQUIRE_2FA = True

    sign_in(client, staff, otp_token="123456")

    assert not in_the_admin(client)


def test_with_2fa_required_the_password_and_a_totp_code_get_in(client, settings, enrolled):
    settings.STAFF_REQUIRE_2FA = True

    response = sign_in(client, enrolled, otp_token=current_code(enrolled))

    assert response.status_code == 302
    assert in_the_admin(client)
    entry = AuditEntry.objects.get(action="auth.signed_in")
    assert (entry.actor_id, entry.changes["second_factor"]) == (enrolled.pk, "TOTPDevice")


def test_a_recovery_code_gets_in_once(client, settings, enrolled):
    settings.STAFF_REQUIRE_2FA = True
    code = StaticToken.objects.filter(device__user=enrolled).first().token

    sign_in(client, enrolled, otp_token=code)
    assert in_the_admin(client)
    client.logout()
    sign_in(client, enrolled, otp_token=code)

    assert not in_the_admin(client)


def test_a_session_signed_in_with_a_password_alone_is_not_let_in_once_2fa_is_required(
    client, settings, staff
):
    client.force_login(staff)
    assert in_the_admin(client)

    settings.STAFF_REQUIRE_2FA = True

    assert not in_the_admin(client)


def test_without_2fa_required_development_signs_in_with_a_password(client, settings, staff):
    settings.STAFF_REQUIRE_2FA = False

    sign_in(client, staff)

    assert in_the_admin(client)


def test_twenty_wrong_passwords_lock_the_account_and_the_lock_is_on_the_trail(client, staff):
    for _ in range(20):
        sign_in(client, staff, password="not the password")

    lock = AuditEntry.objects.get(action="auth.locked_out")
    assert (lock.actor, lock.ip) == (staff.username, "127.0.0.1")
    assert AuditEntry.objects.filter(action="auth.sign_in_failed").count() == 20

    locked = sign_in(client, staff)

    assert locked.status_code == 429
    assert not in_the_admin(client)
    # Each try while locked is on the trail too.
    assert AuditEntry.objects.filter(action="auth.locked_out").count() == 2


def test_nineteen_wrong_passwords_do_not_lock_the_account(client, staff):
    for _ in range(19):
        sign_in(client, staff, password="not the password")

    sign_in(client, staff)

    assert in_the_admin(client)
    assert not AuditEntry.objects.filter(action="auth.locked_out").exists()


def test_enrolment_prints_an_authenticator_address_and_ten_recovery_codes_once(staff):
    import io

    out = io.StringIO()
    call_command("staff_2fa_enrol", staff.username, stdout=out)

    printed = out.getvalue()
    assert "otpauth://totp/" in printed
    codes = set(StaticToken.objects.filter(device__user=staff).values_list("token", flat=True))
    assert len(codes) == 10 and all(code in printed for code in codes)
    assert AuditEntry.objects.filter(action="auth.second_factor_enrolled").exists()
    with pytest.raises(Exception, match="already enrolled"):
        call_command("staff_2fa_enrol", staff.username, stdout=io.StringIO())


@pytest.mark.parametrize(
    "module, overrides, required",
    [
        ("portal.settings.production", {}, "True"),
        ("portal.settings.production", {"STAFF_REQUIRE_2FA": "0"}, "False"),
        ("portal.settings.dev", {}, "False"),
        ("portal.settings.dev", {"STAFF_REQUIRE_2FA": "1"}, "True"),
    ],
)
def test_production_requires_2fa_unless_told_otherwise_and_make_runs_settings_do_not(
    module, overrides, required
):
    from tests.portal.test_settings import PRODUCTION_ENV, run_python

    result = run_python(
        "-c",
        "from django.conf import settings; print(settings.STAFF_REQUIRE_2FA)",
        env_overrides={
            **PRODUCTION_ENV,
            "DJANGO_SETTINGS_MODULE": module,
            **overrides,
        },
    )

    assert result.stdout.strip() == required, result.stderr
