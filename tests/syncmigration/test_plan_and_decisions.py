"""The run's plan (dry run), its validation, four-eyes and the wait of step 2, without Codat: the
Celery sends are collected instead of run (`no_celery`)."""

from datetime import timedelta

import pytest
from django.core.management import call_command
from django.core.management.base import CommandError
from django.urls import reverse
from django.utils import timezone

from approvals.models import ApprovalRequest, ApprovalState
from approvals.services import approval_decide, policy
from audit.models import AuditEntry
from syncmigration import services
from syncmigration.models import MigrationRun, MigrationStep, RunState, Stage
from syncsettings.models import ClientSyncSettings
from syncsettings.services import client_sync_settings_record, company_sync_settings_record
from tests.factories import CompanyFactory, CompanyProductFactory, ProductFactory, StaffFactory
from webhooks.models import ConsumerStatus, WebhookConsumer

pytestmark = pytest.mark.django_db

RECEIVER = "https://portal.example/codat/webhooks"


@pytest.fixture
def no_celery(monkeypatch):
    sent = []
    monkeypatch.setattr("operations.queue.enqueue", lambda ids, countdown=None: sent.append(ids))
    monkeypatch.setattr(services, "_enqueue_advance", lambda run_id, countdown=None: None)
    return sent


@pytest.fixture
def world(no_celery):
    product = ProductFactory(
        identifier="cash-flow", kind="custom", data_types=["invoices", "bills"]
    )
    standard = ProductFactory(identifier="lending", kind="standard")
    companies = [CompanyFactory(name=f"Company {n}") for n in range(10)]
    client_sync_settings_record(
        client_id="client",
        settings=[
            {"dataType": "invoices", "fetchOnFirstLink": True, "syncSchedule": 24, "syncOrder": 0},
            {"dataType": "bills", "fetchOnFirstLink": True, "syncSchedule": 0, "syncOrder": 1},
        ],
        overrides_defaults=True,
        observed_at=timezone.now(),
    )
    company_sync_settings_record(
        company=companies[0],
        settings=[
            {"dataType": "invoices", "fetchOnFirstLink": True, "syncSchedule": 2, "syncOrder": 0}
        ],
        overrides_defaults=True,
        observed_at=timezone.now(),
    )
    CompanyProductFactory(company=companies[1], product=product, status="active")
    WebhookConsumer.objects.create(
        url=RECEIVER,
        event_types=["connection.connected", "read.completed"],
        status=ConsumerStatus.ACTIVE,
    )
    WebhookConsumer.objects.create(
        url="https://elsewhere.example/hook",
        event_types=["company.created"],
        status=ConsumerStatus.ACTIVE,
    )
    admin = StaffFactory(role="admin")
    return product, standard, companies, admin


def create(product, admin, **overrides):
    arguments = {
        "scope_kind": "all",
        "products": [product],
        "canary_percent": 20,
        "receiver_url": RECEIVER,
        "created_by": admin,
        **overrides,
    }
    return services.migration_run_create(**arguments)


def test_the_dry_run_counts_each_steps_calls_and_says_what_changes(world, refuse_consent):
    product, standard, companies, admin = world
    refuse_consent[companies[9].pk] = "Cash flow: no consent recorded"

    run = create(product, admin, products=[product, standard])

    plan = run.plan
    assert plan["company_count"] == 10
    assert plan["canary_count"] == 2
    assert plan["calls"] == {
        Stage.DISABLE_CLIENT_SYNC: 4,  # read and set the client's settings and one override
        Stage.WAIT: 0,
        Stage.DISABLE_WEBHOOKS: 2,  # a disabled copy of the read consumer, the original deleted
        Stage.SUBSCRIBE: 1,
        # companies 0 and 1 are the canary; company 1 holds cash-flow already
        Stage.CANARY: 3,
        # 8 others with each product, less company 9 (no consent to either)
        Stage.ADD_PRODUCTS: 14,
    }
    by_product = {p["identifier"]: p for p in plan["products"]}
    assert by_product["cash-flow"]["lacking_consent"] == [companies[9].pk]
    assert by_product["cash-flow"]["already_held"] == 1
    assert [c["url"] for c in plan["consumers_to_disable"]] == [RECEIVER]
    assert plan["consumers_kept"] == 1
    # the connection events the portal heard go on; the read events are the new ones
    assert plan["new_consumer_event_types"] == [
        "cash-flow.read.completed",
        "connection.connected",
        "read.completed",
    ]
    # the override's 2-hourly schedule is the most frequent: an hour is the floor
    assert plan["wait_seconds"] == 2 * 3600
    assert by_product["cash-flow"]["dual_sync_risks"]


@pytest.mark.parametrize(
    "overrides, field",
    [
        ({"products": []}, "products"),
        ({"scope_kind": "companies", "company_ids": [999999]}, "company_ids"),
        ({"canary_percent": None}, "canary"),
        ({"canary_percent": None, "canary_company_ids": [999999]}, "canary_company_ids"),
        ({"scope_kind": "filter", "scope_filter": {}}, "scope_filter"),
        ({"receiver_url": "ftp://x"}, "receiver_url"),
    ],
)
def test_bad_input_is_refused_naming_the_field_and_changes_nothing(world, overrides, field):
    product, _, _, admin = world
    with pytest.raises(services.MigrationRefused, match=f"^{field}"):
        create(product, admin, **overrides)
    assert not MigrationRun.objects.exists()


def test_starting_above_the_threshold_waits_for_a_second_admin_then_runs_in_the_makers_name(
    world,
):
    product, _, _, admin = world
    thresholds = policy()
    thresholds.bulk_action_over = 5
    thresholds.save()
    run = create(product, admin)

    approval = services.migration_run_start(run=run, user=admin)

    assert isinstance(approval, ApprovalRequest)
    run.refresh_from_db()
    assert run.state == RunState.AWAITING_START_APPROVAL
    with pytest.raises(services.MigrationRefused, match="second person"):
        services.migration_run_start(run=run, user=admin)
    checker = StaffFactory(role="admin")
    decided = approval_decide(approval=approval, checker=checker, approve=True)
    assert decided.state == ApprovalState.APPROVED, decided.outcome
    run.refresh_from_db()
    assert run.state == RunState.RUNNING
    step = MigrationStep.objects.get(run=run)
    assert step.stage == Stage.DISABLE_CLIENT_SYNC and step.started_by == admin
    assert AuditEntry.objects.filter(action="syncmigration.started", actor_id=admin.pk).exists()


def test_an_operator_may_not_approve_a_migration(world):
    product, _, _, admin = world
    thresholds = policy()
    thresholds.bulk_action_over = 5
    thresholds.save()
    approval = services.migration_run_start(run=create(product, admin), user=admin)
    decided_by_operator = pytest.raises(Exception, match="allowed to do this")
    with decided_by_operator:
        approval_decide(approval=approval, checker=StaffFactory(role="operator"), approve=True)


def test_step_one_writes_the_reads_then_the_disabling_sets_from_what_codat_answered(world):
    product, _, companies, admin = world
    run = create(product, admin)
    services.migration_run_start(run=run, user=admin)

    services.migration_run_advance(run_id=run.pk)
    step = MigrationStep.objects.get(run=run)
    assert len(step.operation_ids["read"]) == 2
    # Codat answers (the rows succeed, the foundation records the answer)
    from operations.models import Operation

    Operation.objects.filter(pk__in=step.operation_ids["read"]).update(state="succeeded")
    services.migration_run_advance(run_id=run.pk)

    run.refresh_from_db()
    step.refresh_from_db()
    assert run.snapshot_client_settings["settings"][0]["syncSchedule"] == 24
    assert set(run.snapshot_company_settings) == {str(companies[0].pk)}
    sets = Operation.objects.filter(pk__in=step.operation_ids["set"]).order_by("pk")
    assert [op.kind for op in sets] == ["set_client_sync_settings", "set_company_sync_settings"]
    for op in sets:
        assert {s["syncSchedule"] for s in op.parameters["settings"]} == {0}
        assert {s["fetchOnFirstLink"] for s in op.parameters["settings"]} == {False}
    assert all(op.job_id == step.jobs.get().pk for op in sets)


def test_the_wait_lasts_its_time_and_while_a_client_level_read_still_runs(world, settings):
    from companies.models import PullOperation
    from tests.factories import PullOperationFactory

    product, _, companies, admin = world
    settings.SYNC_MIGRATION_WAIT_SECONDS = 0
    run = create(product, admin)
    run.company_ids = [c.pk for c in companies]
    run.state, run.stage = RunState.RUNNING, Stage.WAIT
    run.snapshot_client_settings = {
        "settings": ClientSyncSettings.objects.get().settings,
        "overridesDefaults": True,
    }
    run.snapshot_company_settings = {}
    run.save()
    PullOperationFactory(company=companies[3], data_type_id="invoices", is_completed=False)

    services.migration_run_advance(run_id=run.pk)
    run.refresh_from_db()
    assert run.stage == Stage.WAIT  # the read still runs

    PullOperation.objects.update(is_completed=True, completed=timezone.now())
    services.migration_run_advance(run_id=run.pk)
    run.refresh_from_db()
    assert run.stage == Stage.DISABLE_WEBHOOKS


def test_the_wait_without_the_setting_is_at_least_an_hour(world, settings):
    settings.SYNC_MIGRATION_WAIT_SECONDS = None
    assert services.wait_seconds_for([[{"syncSchedule": 0}]]) == 3600
    assert services.wait_seconds_for([[{"syncSchedule": 24}], [{"syncSchedule": 6}]]) == 6 * 3600
    now = timezone.now()
    assert now + timedelta(seconds=services.wait_seconds_for([])) > now


def test_the_command_plans_and_shows_the_status(world, capsys):
    product, _, _, admin = world
    call_command(
        "sync_migration",
        "plan",
        "--products",
        product.identifier,
        "--canary-percent",
        "10",
        "--receiver-url",
        RECEIVER,
        "--user",
        admin.username,
    )
    run = MigrationRun.objects.get()
    call_command("sync_migration", "status", str(run.pk))
    out = capsys.readouterr().out
    assert "disable_client_sync: 4 call(s)" in out
    assert f"{run}: Planned" in out
    with pytest.raises(CommandError, match="--user"):
        call_command("sync_migration", "start", str(run.pk), "--user", "nobody")
    operator = StaffFactory(role="operator")
    with pytest.raises(CommandError, match="admins only"):
        call_command("sync_migration", "start", str(run.pk), "--user", operator.username)


def test_the_run_page_shows_the_plan_and_only_admins_get_the_buttons(world, client):
    product, _, _, admin = world
    run = create(product, admin)
    url = reverse("admin:syncmigration_migrationrun_change", args=[run.pk])

    client.force_login(StaffFactory(role="viewer"))
    page = client.get(url)
    assert page.status_code == 200
    assert b"The plan (dry run)" in page.content
    assert b"Start the migration" not in page.content
    assert client.post(reverse("admin:syncmigration_start", args=[run.pk])).status_code == 403

    client.force_login(admin)
    page = client.get(url)
    assert b"Start the migration" in page.content
    assert client.get(url.replace(str(run.pk), "abc")).status_code == 404
    response = client.post(reverse("admin:syncmigration_start", args=[run.pk]))
    assert response.status_code == 302
    run.refresh_from_db()
    assert run.state == RunState.RUNNING


def test_the_pages_menu_lists_migration_runs(world, client):
    client.force_login(StaffFactory(role="viewer"))
    page = client.get(reverse("admin:index"))
    assert reverse("admin:syncmigration_migrationrun_changelist").encode() in page.content


def test_a_call_that_fails_for_good_stops_the_run_and_it_goes_on_once_retried(world):
    from operations.models import Operation

    product, _, _, admin = world
    run = create(product, admin)
    services.migration_run_start(run=run, user=admin)
    services.migration_run_advance(run_id=run.pk)
    reads = Operation.objects.filter(
        pk__in=MigrationStep.objects.get(run=run).operation_ids["read"]
    )
    reads.update(state="failed", last_error="Codat answered 401")

    services.migration_run_advance(run_id=run.pk)
    run.refresh_from_db()
    assert run.state == RunState.STOPPED
    assert "Codat answered 401" in run.last_error
    assert run.snapshot_client_settings is None  # nothing was set from a failed read

    reads.update(state="succeeded", last_error="")  # the operator retried them from the job
    services.migration_run_continue(run=run, user=admin)
    services.migration_run_advance(run_id=run.pk)
    run.refresh_from_db()
    assert run.state == RunState.RUNNING
    assert "set" in MigrationStep.objects.get(run=run).operation_ids


def test_the_command_starts_and_rolls_back_through_the_same_services(world, capsys):
    product, _, _, admin = world
    run = create(product, admin)

    call_command("sync_migration", "start", str(run.pk), "--user", admin.username)
    services.migration_run_advance(run_id=run.pk)  # the first step's reads are written
    assert "Running" in capsys.readouterr().out
    with pytest.raises(CommandError, match=r"^state: only a run paused after its canary"):
        call_command("sync_migration", "continue", str(run.pk), "--user", admin.username)
    run.refresh_from_db()
    assert run.state == RunState.RUNNING

    call_command(
        "sync_migration", "rollback", str(run.pk), "--user", admin.username, "--reason", "test"
    )
    run.refresh_from_db()
    assert run.state == RunState.ROLLING_BACK
    assert AuditEntry.objects.filter(
        action="syncmigration.rollback", actor_id=admin.pk, changes__reason="test"
    ).exists()
    with pytest.raises(CommandError, match=r"^run: no sync migration"):
        call_command("sync_migration", "status", "999999")


@pytest.mark.parametrize(
    "seconds, words",
    [
        (0, "0 s"),
        (40, "40 s"),
        (725, "12 min 5 s"),
        (3600, "1 h"),
        (86399, "23 h 59 min"),
        (86400, "1 day"),
        (2 * 86400 + 3600, "2 days 1 h"),
    ],
)
def test_durations_on_the_run_page_read_as_words(seconds, words):
    from syncmigration.selectors import format_seconds

    assert format_seconds(seconds) == words
