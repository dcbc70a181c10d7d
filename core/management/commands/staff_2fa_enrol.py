"""`manage.py staff_2fa_enrol <username>`: give a staff account its second factor.

Prints, once, the otpauth:// address to add to an authenticator app (as a link or a QR code
made from it) and ten single-use recovery codes. Each is a django-otp device: a TOTP device and
a static device whose tokens are the recovery codes. --reset replaces both, for a lost phone.
"""

from django.contrib.auth import get_user_model
from django.core.management.base import BaseCommand, CommandError
from django.db import transaction
from django_otp.plugins.otp_static.models import StaticDevice, StaticToken
from django_otp.plugins.otp_totp.models import TOTPDevice

from audit.services import audit_record

RECOVERY_CODES = 10


class Command(BaseCommand):
    help = (
        "Enrol a staff account for two-factor sign-in: prints an authenticator (TOTP) address "
        "and ten recovery codes, once. --reset replaces an existing enrolment."
    )

    def add_arguments(self, parser):
        parser.add_argument("username")
        parser.add_argument(
            "--reset", action="store_true", help="replace the account's existing devices"
        )

    @transaction.atomic
    def handle(self, *args, username, reset, **options):
        user = get_user_model().objects.filter(username=username).first()
        if user is None:
            raise CommandError(f"No account named {username!r}.")
        enrolled = TOTPDevice.objects.filter(user=user).exists()
        if enrolled and not reset:
            raise CommandError(f"{username} is already enrolled; --reset replaces the devices.")
        TOTPDevice.objects.filter(user=user).delete()
        StaticDevice.objects.filter(user=user).delete()
        totp = TOTPDevice.objects.create(user=user, name="authenticator app", confirmed=True)
        recovery = StaticDevice.objects.create(user=user, name="recovery codes", confirmed=True)
        codes = [StaticToken.random_token() for _ in range(RECOVERY_CODES)]
        StaticToken.objects.bulk_create(
            [StaticToken(device=recovery, token=code) for code in codes]
        )
        audit_record(
            action="auth.second_factor_enrolled",
            target=user,
            changes={"reset": enrolled, "recovery_codes": len(codes)},
        )
        self.stdout.write(f"Authenticator app address for {username} (shown once):")
        self.stdout.write(totp.config_url)
        self.stdout.write("Recovery codes, each works once (shown once):")
        for code in codes:
            self.stdout.write(f"  {code}")
