"""`manage.py create_staff <username> --role viewer|operator|admin`: a staff account in one role.

Not `createsuperuser`: a superuser holds every permission whatever group it is in, so a
"viewer" made that way could run every action. The account made here is staff, never superuser,
with no permissions of its own, in exactly one role's group (core.roles decides what each may do).
"""

import logging
import os
import secrets

from django.contrib.auth import get_user_model, password_validation
from django.contrib.auth.models import Group
from django.core.exceptions import ValidationError
from django.core.management.base import BaseCommand, CommandError
from django.core.validators import validate_email
from django.db import transaction

from core.roles import ROLES

logger = logging.getLogger(__name__)


class Command(BaseCommand):
    help = (
        "Create a staff account (staff, not superuser) in exactly one role: viewer, operator or "
        "admin. Without --password-from-env a new account gets a generated password, printed "
        "once. --update changes an existing account instead: its role, e-mail and (when given) "
        "password; it also takes away superuser status and any permissions given outside the role."
    )

    def add_arguments(self, parser):
        parser.add_argument("username")
        parser.add_argument("--role", required=True, choices=ROLES)
        parser.add_argument("--email", default=None, help="the account's e-mail address")
        parser.add_argument(
            "--password-from-env",
            metavar="VAR",
            default=None,
            help="read the password from this environment variable (never from the command "
            "line, where other users and shell history see it)",
        )
        parser.add_argument(
            "--update",
            action="store_true",
            help="change the account if the username is taken (without it, that is an error)",
        )

    def handle(self, *args, username, role, email, password_from_env, update, **options):
        User = get_user_model()
        try:
            User.username_validator(username)
        except ValidationError as error:
            raise CommandError(f"Bad username {username!r}: {' '.join(error.messages)}") from error
        group = Group.objects.filter(name=role).first()
        if group is None:
            raise CommandError(f"The role group {role!r} does not exist; run `manage.py migrate`.")
        existing = User.objects.filter(username=username).first()
        if existing is not None and not update:
            raise CommandError(
                f"A user named {username!r} already exists; pass --update to change it."
            )
        was_superuser = existing is not None and existing.is_superuser
        user = existing or User(username=username, is_active=True)
        if email is not None:
            try:
                validate_email(email)
            except ValidationError as error:
                raise CommandError(f"Bad e-mail address {email!r}.") from error
            user.email = email

        password = self._password_from_env(password_from_env)
        generated = password is None and (existing is None or not existing.has_usable_password())
        if generated:
            password = secrets.token_urlsafe(16)
        if password is not None:
            try:
                password_validation.validate_password(password, user)
            except ValidationError as error:
                raise CommandError(
                    f"The password in {password_from_env} is refused: {' '.join(error.messages)}"
                ) from error
            user.set_password(password)

        with transaction.atomic():
            user.is_staff = True
            user.is_superuser = False
            user.save()
            # The role is the account's only source of permissions.
            user.groups.set([group])
            user.user_permissions.clear()

        # The password is never part of the log record: only who and which role.
        logger.info(
            "staff_account.created" if existing is None else "staff_account.updated",
            extra={"username": username, "role": role},
        )
        done = "Created" if existing is None else "Updated"
        self.stdout.write(self.style.SUCCESS(f"{done} staff account {username!r}, role {role}."))
        if was_superuser:
            self.stdout.write("It is no longer a superuser: its role decides what it may do.")
        if generated:
            self.stdout.write(f"Password (shown only now): {password}")

    @staticmethod
    def _password_from_env(variable: str | None) -> str | None:
        if variable is None:
            return None
        value = os.environ.get(variable)
        if not value:
            raise CommandError(f"The environment variable {variable} is not set or empty.")
        return value
