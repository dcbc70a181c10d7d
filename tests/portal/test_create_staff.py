"""`manage.py create_staff`, called as the README's "Staff roles" section shows it: accounts that
log in to the admin, hold exactly one role and can do only what that role may."""

import io
import logging
import re
import shlex
from pathlib import Path

import pytest
from django.contrib.auth import get_user_model
from django.contrib.auth.models import Group, Permission
from django.core.management import CommandError, call_command
from django.test import Client
from django.urls import reverse

from operations.models import Operation
from tests.factories import CompanyFactory

pytestmark = pytest.mark.django_db

README = Path(__file__).resolve().parent.parent.parent / "README.md"
# A page only operators and admins may open (consent.send_consent_requests).
OPERATOR_PAGE = "admin:consent_campaign_add"
PRINTED_PASSWORD = re.compile(r"Password \(shown only now\): (\S+)")


def readme_commands() -> list[list[str]]:
    """The arguments of each `create_staff` line in the README's "Staff roles" section."""
    section = README.read_text().split("## Staff roles", 1)[1].split("\n## ", 1)[0]
    block = re.search(r"```sh\n(.*?)```", section, re.S).group(1)
    commands = []
    for line in block.strip().splitlines():
        words = shlex.split(line)
        assert words[:3] == ["python", "manage.py", "create_staff"], line
        commands.append(words[3:])
    return commands


def run_readme_command(number: int) -> str:
    return create_staff(*readme_commands()[number])


def create_staff(*arguments: str) -> str:
    output = io.StringIO()
    call_command("create_staff", *arguments, stdout=output)
    return output.getvalue()


def logged_in(username: str, password: str) -> Client:
    """A browser that signed in through the admin's login form (so the password is checked)."""
    client = Client()
    response = client.post(
        reverse("admin:login"),
        {"username": username, "password": password, "next": reverse("admin:index")},
    )
    assert response.status_code == 302, f"{username} could not log in"
    assert response["Location"] == reverse("admin:index")
    return client


def groups_of(username: str) -> list[str]:
    user = get_user_model().objects.get(username=username)
    return list(user.groups.values_list("name", flat=True))


def test_the_readmes_viewer_gets_a_password_once_logs_in_and_is_refused_operator_work(caplog):
    caplog.set_level(logging.DEBUG)

    # when
    output = run_readme_command(0)

    # then
    password = PRINTED_PASSWORD.search(output).group(1)
    assert "staff_account.created" in caplog.text and password not in caplog.text
    alice = get_user_model().objects.get(username="alice")
    assert alice.is_staff and not alice.is_superuser
    assert alice.email == "alice@example.com"
    assert groups_of("alice") == ["viewer"]

    client = logged_in("alice", password)
    assert client.get(reverse("admin:index")).status_code == 200
    assert client.get(reverse(OPERATOR_PAGE)).status_code == 403
    company = CompanyFactory()
    response = client.post(
        reverse("admin:companies_company_confirm_operation"),
        {"kind": "add_product", "company_ids": str(company.pk), "confirm": "1"},
    )
    assert response.status_code == 403
    assert not Operation.objects.exists()


def test_the_readmes_operator_takes_its_password_from_the_environment(monkeypatch):
    arguments = readme_commands()[1]
    variable = arguments[arguments.index("--password-from-env") + 1]
    password = "Harbour-operator-2024"
    monkeypatch.setenv(variable, password)

    output = run_readme_command(1)

    assert password not in output
    assert groups_of("bob") == ["operator"]
    client = logged_in("bob", password)
    assert client.get(reverse(OPERATOR_PAGE)).status_code == 200


def test_the_readmes_update_moves_alice_to_operator_and_keeps_her_password():
    password = PRINTED_PASSWORD.search(run_readme_command(0)).group(1)

    output = run_readme_command(2)

    assert not PRINTED_PASSWORD.search(output)
    assert groups_of("alice") == ["operator"]
    assert logged_in("alice", password).get(reverse(OPERATOR_PAGE)).status_code == 200


def test_update_makes_a_superuser_a_plain_member_of_one_role():
    # given: an account made the old way, a superuser in a role, with extra groups and permissions
    user = get_user_model().objects.create_superuser("carol", "carol@example.com", "Old-pass-1234")
    user.groups.add(*Group.objects.filter(name__in=("operator", "admin")))
    user.user_permissions.add(Permission.objects.get(codename="run_operations"))

    # when
    output = create_staff("carol", "--role", "viewer", "--update")

    # then
    assert "no longer a superuser" in output
    user.refresh_from_db()
    assert user.is_staff and not user.is_superuser
    assert groups_of("carol") == ["viewer"]
    assert not user.user_permissions.exists()
    assert logged_in("carol", "Old-pass-1234").get(reverse(OPERATOR_PAGE)).status_code == 403


def test_a_taken_username_without_update_is_refused_and_the_account_is_unchanged():
    user = get_user_model().objects.create_superuser("dave", "dave@example.com", "Old-pass-1234")

    with pytest.raises(CommandError, match="already exists; pass --update"):
        create_staff("dave", "--role", "viewer", "--email", "new@example.com")

    user.refresh_from_db()
    assert user.is_superuser and user.email == "dave@example.com"
    assert user.check_password("Old-pass-1234")
    assert groups_of("dave") == []


@pytest.mark.parametrize(
    "arguments, environment, message",
    [
        (["--role", "boss"], {}, "invalid choice: 'boss'"),
        (["--role", "viewer", "--email", "not-an-address"], {}, "Bad e-mail address"),
        (["--role", "viewer", "--password-from-env", "NO_SUCH_VAR"], {}, "NO_SUCH_VAR is not set"),
        (
            ["--role", "viewer", "--password-from-env", "WEAK"],
            {"WEAK": "password"},
            "The password in WEAK is refused: This password is too common",
        ),
    ],
)
def test_bad_input_is_refused_with_the_reason_and_creates_nothing(
    monkeypatch, arguments, environment, message
):
    for name, value in environment.items():
        monkeypatch.setenv(name, value)

    with pytest.raises(CommandError, match=re.escape(message)):
        create_staff("erin", *arguments)

    assert not get_user_model().objects.filter(username="erin").exists()
