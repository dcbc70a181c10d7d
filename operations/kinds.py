"""Every kind of Codat call the portal makes, as one table.

A spec says what a kind needs (a company, a product, data types, a webhook consumer), the consent
it asks for, how it moves the company's product assignment, the Codat call itself, and what
success and failure change. The planner (operations/planning.py), the services, the worker
(operations/worker.py), the sweeper and the admin read the spec; none of them branches on the
kind.

To add a kind: add its value to `OperationKind` (operations/models.py, and a migration for the
check constraints), write its call and outcome functions below, and add one `OperationSpec` to
`SPECS`.
"""

from __future__ import annotations

import enum
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING

from operations.models import OperationKind, OperationState
from products.models import CompanyProductStatus, ProductKind

if TYPE_CHECKING:
    from codat.client import CodatClient
    from operations.models import Operation
    from products.models import Product

# Codat tag that makes a retried create-company find the company an earlier attempt created.
IDEMPOTENCY_TAG = "portalOperation"


class Target(enum.Enum):
    """What one row of the kind acts on (and so what the planner and the limiter key on)."""

    COMPANY = "company"  # one company (client-level reads)
    COMPANY_PRODUCT = "company_product"  # one product of one company
    NEW_COMPANY = "new_company"  # a company that exists at Codat only once the call succeeds
    CONSUMER = "consumer"  # one webhook consumer (a WebhookConsumer row)
    ACCOUNT = "account"  # the client's account as a whole
    # One bank-feed connection of a company, or one of its source accounts (bankfeeds/); not
    # offered as a bulk action over selected companies.
    BANK_FEED = "bank_feed"


# Targets whose rows name an existing company (the limiter's per-company budget keys on it).
TARGETS_WITH_COMPANY = frozenset({Target.COMPANY, Target.COMPANY_PRODUCT, Target.BANK_FEED})


class DataTypes(enum.Enum):
    NONE = "none"
    PRODUCT_SUBSET = "product_subset"  # none (all of the product's) or some of its data types
    EXACTLY_ONE = "exactly_one"


class Consent(enum.Enum):
    """The consent a row needs before it is written, and again just before its call."""

    NONE = "none"  # reads no SMB data
    PRODUCT = "product"  # the product's data types (or the ones chosen) must be consented
    DATA_TYPES = "data_types"  # client-level reads: consent must cover the data types read


@dataclass(frozen=True)
class Assignment:
    """How a kind moves the company's product assignment (`CompanyProduct.status`).

    `written` is set with the row (None: the row leaves the assignment as it is); the outcome
    then moves an assignment still in `written` to `succeeded` or `failed`. A cancel before the
    call leaves Codat as it was, so the assignment goes to `cancelled`.
    """

    skip_reason: str  # "{product}" is replaced by the product's name
    skip: Callable[[str | None], bool]  # given the current status (None: never assigned)
    written: str | None = None
    succeeded: str | None = None
    failed: str | None = None
    cancelled: str | None = None
    # Retrying a failed row puts the assignment back to `written` from these statuses.
    retry_from: frozenset[str] = frozenset()


@dataclass(frozen=True)
class OperationSpec:
    kind: OperationKind
    target: Target
    call: Callable[[CodatClient, Operation], dict | None]
    describe: Callable[[str, str, Sequence[str]], str]  # (companies, product name, data types)
    data_types: DataTypes = DataTypes.NONE
    consent: Consent = Consent.NONE
    # Consent can end after the row was written (withdrawn, or lapsed under the reconfirmation
    # policy): reads start only with consent at the moment of the call.
    consent_again_before_call: bool = False
    assignment: Assignment | None = None
    # The change that undoes this one on the same target: the newest wish cancels a pending
    # opposite row, and waits for a running one to finish.
    opposite: OperationKind | None = None
    # Codat's 404 means what the call wanted is already so (a removal of what is not there).
    not_found_is_success: bool = False
    # Before the row is marked done: turn Codat's answer into what the row keeps, and the row's
    # fields it sets (e.g. the company a create made). (operation, answer) -> (result, fields)
    record_success: Callable[[Operation, dict], tuple[dict, dict]] | None = None
    # After the row is marked done, in the same transaction: what the outcome changes elsewhere
    # (a webhook consumer's status). (operation, state, error text)
    after_finish: Callable[[Operation, str, str], None] | None = None
    refuse: Callable[[Product | None, Sequence[str]], str] | None = None  # why not, or ""
    # A row refused for lack of consent can wait for it: a consent request is sent and the row
    # is written when the customer agrees (consent/effects.py). Only adding a product does.
    can_wait_for_consent: bool = False
    # Offered as an action over selected companies (the bulk form); kinds that need their own
    # parameters (a company's sync settings) are requested through their services instead.
    offered_in_bulk: bool = True
    # Companies the request leaves out for a reason other than consent or the assignment,
    # unless the request's parameters override it: (company ids, product, parameters) ->
    # {company id: reason}; and the same as filters on Company with their reasons, for the
    # confirmation page's summary, which counts in SQL: (product, parameters) -> [(Q, reason)].
    guard: Callable[[Sequence[int], Product | None, dict], dict[int, str]] | None = None
    guard_groups: Callable[[Product | None, dict], list[tuple[object, str]]] | None = None

    @property
    def needs_product(self) -> bool:
        return self.target is Target.COMPANY_PRODUCT

    @property
    def on_companies(self) -> bool:
        """Planned over a selection of existing companies (the bulk actions)."""
        return self.target in (Target.COMPANY, Target.COMPANY_PRODUCT)

    def check_request(self, product: Product | None, data_types: Sequence[str]) -> str:
        """Why this request cannot become rows ("" if it can), in words for people."""
        if self.needs_product and product is None:
            return "Choose a product."
        if self.data_types is DataTypes.EXACTLY_ONE and len(data_types) != 1:
            return "Choose exactly one data type to refresh."
        if self.data_types is DataTypes.PRODUCT_SUBSET and product is not None:
            allowed = set(product.product_data_types.values_list("data_type_id", flat=True))
            unknown = sorted(set(data_types) - allowed)
            if unknown:
                return (
                    f"{', '.join(unknown)} is not a data type of {product.name}. "
                    f"Valid options: {', '.join(sorted(allowed))}."
                )
        return self.refuse(product, data_types) if self.refuse else ""

    def description(self, count: int, product: Product | None, data_types: Sequence[str]) -> str:
        companies = f"{count:,} compan{'y' if count == 1 else 'ies'}"
        return self.describe(companies, product.name if product else "", data_types)

    def target_of(self, operation: Operation) -> str:
        """What one row acts on, in words for the operation list."""
        if self.target is Target.COMPANY_PRODUCT:
            return f"{operation.company.name} · {operation.product.name}"
        if self.target is Target.COMPANY:
            return operation.company.name
        if self.target is Target.NEW_COMPANY:
            return operation.company.name if operation.company else operation.parameters["name"]
        if self.target is Target.CONSUMER:
            return f"webhook consumer {operation.consumer.url}"
        if self.target is Target.BANK_FEED:
            account = operation.parameters.get("accountId")
            return f"{operation.company.name} · bank feed" + (
                f" account {account}" if account else ""
            )
        return "the client's account at Codat"

    def assignment_after(self, state: str) -> str | None:
        """The status an assignment still in `written` takes for this outcome (None: stays)."""
        if self.assignment is None:
            return None
        if state == OperationState.SUCCEEDED:
            return self.assignment.succeeded
        if state == OperationState.FAILED:
            return self.assignment.failed
        if state == OperationState.CANCELLED:
            return self.assignment.cancelled
        return None


# -- the calls --------------------------------------------------------------------------------


def _company(operation: Operation) -> str:
    return str(operation.company.codat_id)


def _add_product(client: CodatClient, operation: Operation) -> None:
    client.add_product(_company(operation), operation.product.identifier)


def _remove_product(client: CodatClient, operation: Operation) -> None:
    client.remove_product(_company(operation), operation.product.identifier)


def _refresh_product(client: CodatClient, operation: Operation) -> None:
    client.refresh_product_data(
        _company(operation), operation.product.identifier, data_types=operation.data_types or None
    )


def _refresh_all_data(client: CodatClient, operation: Operation) -> None:
    client.refresh_all_data(_company(operation))


def _refresh_data_type(client: CodatClient, operation: Operation) -> dict:
    return client.refresh_data_type(
        _company(operation),
        operation.data_types[0],
        connection_id=operation.parameters.get("connectionId") or None,
    )


def _create_company(client: CodatClient, operation: Operation) -> dict:
    key = str(operation.idempotency_key)
    if operation.attempts > 1:
        # An earlier attempt may have created the company before its answer was lost.
        for company in client.iter_companies(tags=f"{IDEMPOTENCY_TAG}={key}"):
            return company
    params = operation.parameters
    return client.create_company(
        params["name"],
        description=params.get("description") or None,
        tags={**params.get("tags", {}), IDEMPOTENCY_TAG: key},
        products=params.get("products") or None,
        # Codat keeps the first answer 90 minutes per key; the tag lookup above covers longer.
        idempotency_key=key,
    )


def _register_consumer(client: CodatClient, operation: Operation) -> dict:
    from webhooks.consumers import consumer_register_at_codat

    return consumer_register_at_codat(client, operation)


def _delete_consumer(client: CodatClient, operation: Operation) -> dict:
    from webhooks.consumers import consumer_delete_at_codat

    return consumer_delete_at_codat(client, operation)


def _list_consumers(client: CodatClient, operation: Operation) -> dict:
    return client.list_webhook_consumers()


def _bank_feeds(name: str) -> Callable:
    """A call or outcome function of bankfeeds/calls.py, imported when it runs (bankfeeds
    imports operations, not the other way round at import time)."""

    def run(*args):
        from bankfeeds import calls

        return getattr(calls, name)(*args)

    run.__name__ = name
    return run


# -- what outcomes change ---------------------------------------------------------------------


def _company_created(operation: Operation, answer: dict) -> tuple[dict, dict]:
    from companies.services import company_mirror_from_codat

    company = company_mirror_from_codat(data=answer)
    awaiting = operation.parameters.get("awaiting_consent") or []
    if awaiting:
        from consent.services import new_company_consent_requests_create

        new_company_consent_requests_create(
            company=company, product_identifiers=awaiting, user=operation.requested_by
        )
    return {"companyId": answer["id"]}, {"company": company}


def _pull_queued(operation: Operation, answer: dict) -> tuple[dict, dict]:
    from companies.services import pull_operation_mirror_from_codat

    pull = pull_operation_mirror_from_codat(company=operation.company, data=answer)
    return {"datasetId": str(pull.codat_id)}, {}


def _consumer_registered(operation: Operation, answer: dict) -> tuple[dict, dict]:
    from webhooks.consumers import consumer_registered

    return consumer_registered(operation, answer), {}


def _consumers_listed(operation: Operation, answer: dict) -> tuple[dict, dict]:
    from webhooks.consumers import webhook_consumers_import

    return {"changed": webhook_consumers_import(remotes=answer.get("results") or [])}, {}


def _company_create_outcome(operation: Operation, state: str, error: str) -> None:
    # A company created for bank feeds goes on to its bank-feed connection.
    from bankfeeds.calls import company_created

    company_created(operation, state, error)


def _consumer_outcome(operation: Operation, state: str, error: str) -> None:
    from webhooks.consumers import consumer_operation_finished

    consumer_operation_finished(operation, state=state, error=error)


def _refuse_standard_product_refresh(product: Product | None, data_types: Sequence[str]) -> str:
    if product is not None and product.kind == ProductKind.STANDARD:
        return (
            f"{product.name} is a standard product: Codat does not refresh standard products"
            ' on request (it answers "doesn\'t support data refreshing"); their data is read'
            " on Codat's own schedule. Only custom products can be refreshed."
        )
    return ""


def _sync_settings(name: str) -> Callable:
    """A call or outcome function of syncsettings/calls.py, imported when it runs."""

    def run(*args):
        from syncsettings import calls

        return getattr(calls, name)(*args)

    run.__name__ = name
    return run


def _dual_sync_guard(company_ids, product, parameters):
    from syncsettings.guard import dual_sync_left_out

    return dual_sync_left_out(company_ids=company_ids, product=product, parameters=parameters)


def _dual_sync_guard_groups(product, parameters):
    from syncsettings.guard import dual_sync_left_out_groups

    return dual_sync_left_out_groups(product=product, parameters=parameters)


def _client_level_refresh_guard(company_ids, product, parameters):
    from syncsettings.guard import client_level_refresh_left_out

    return client_level_refresh_left_out(
        company_ids=company_ids, product=product, parameters=parameters
    )


def _client_level_refresh_guard_groups(product, parameters):
    from syncsettings.guard import client_level_refresh_left_out_groups

    return client_level_refresh_left_out_groups(product=product, parameters=parameters)


def _types(data_types: Sequence[str]) -> str:
    return f" ({', '.join(data_types)})" if data_types else ""


# -- the table --------------------------------------------------------------------------------

_ACTIVE = CompanyProductStatus.ACTIVE

SPECS: dict[str, OperationSpec] = {
    spec.kind: spec
    for spec in (
        OperationSpec(
            kind=OperationKind.ADD_PRODUCT,
            target=Target.COMPANY_PRODUCT,
            call=_add_product,
            describe=lambda companies, product, types: f"Add {product} to {companies}",
            consent=Consent.PRODUCT,
            assignment=Assignment(
                skip=lambda status: status == _ACTIVE,
                skip_reason="already has {product}",
                written=CompanyProductStatus.PENDING_ADD,
                succeeded=_ACTIVE,
                failed=CompanyProductStatus.FAILED,
                # An add that never ran leaves nothing at Codat; the reconciler corrects any
                # surprise.
                cancelled=CompanyProductStatus.REMOVED,
                retry_from=frozenset(CompanyProductStatus.values) - {_ACTIVE},
            ),
            opposite=OperationKind.REMOVE_PRODUCT,
            can_wait_for_consent=True,
            # A custom product whose data types a client-level schedule still reads would be
            # read twice (syncsettings/guard.py).
            guard=_dual_sync_guard,
            guard_groups=_dual_sync_guard_groups,
        ),
        OperationSpec(
            kind=OperationKind.REMOVE_PRODUCT,
            target=Target.COMPANY_PRODUCT,
            call=_remove_product,
            describe=lambda companies, product, types: f"Remove {product} from {companies}",
            assignment=Assignment(
                skip=lambda status: status in (None, CompanyProductStatus.REMOVED),
                skip_reason="does not have {product}",
                written=CompanyProductStatus.PENDING_REMOVAL,
                succeeded=CompanyProductStatus.REMOVED,
                # A removal that failed or never ran leaves the product where it was: active.
                failed=_ACTIVE,
                cancelled=_ACTIVE,
                retry_from=frozenset({_ACTIVE}),
            ),
            opposite=OperationKind.ADD_PRODUCT,
            not_found_is_success=True,
        ),
        OperationSpec(
            kind=OperationKind.REFRESH_PRODUCT,
            target=Target.COMPANY_PRODUCT,
            call=_refresh_product,
            describe=lambda companies, product, types: (
                f"Refresh {product}{_types(types)} for {companies}"
            ),
            data_types=DataTypes.PRODUCT_SUBSET,
            consent=Consent.PRODUCT,
            consent_again_before_call=True,
            assignment=Assignment(
                skip=lambda status: status != _ACTIVE,
                skip_reason="{product} is not active for this company",
            ),
            refuse=_refuse_standard_product_refresh,
        ),
        OperationSpec(
            kind=OperationKind.REFRESH_ALL_DATA,
            target=Target.COMPANY,
            call=_refresh_all_data,
            describe=lambda companies, product, types: f"Refresh all data of {companies}",
            consent=Consent.DATA_TYPES,
            consent_again_before_call=True,
            # Refresh by mode: companies read at product level refresh their products.
            guard=_client_level_refresh_guard,
            guard_groups=_client_level_refresh_guard_groups,
        ),
        OperationSpec(
            kind=OperationKind.REFRESH_DATA_TYPE,
            target=Target.COMPANY,
            call=_refresh_data_type,
            describe=lambda companies, product, types: f"Refresh {types[0]} of {companies}",
            data_types=DataTypes.EXACTLY_ONE,
            consent=Consent.DATA_TYPES,
            consent_again_before_call=True,
            record_success=_pull_queued,
            guard=_client_level_refresh_guard,
            guard_groups=_client_level_refresh_guard_groups,
        ),
        OperationSpec(
            kind=OperationKind.CREATE_COMPANY,
            target=Target.NEW_COMPANY,
            call=_create_company,
            describe=lambda companies, product, types: "Create a company",
            record_success=_company_created,
            after_finish=_company_create_outcome,
        ),
        OperationSpec(
            kind=OperationKind.REGISTER_CONSUMER,
            target=Target.CONSUMER,
            call=_register_consumer,
            describe=lambda companies, product, types: "Register a webhook consumer",
            opposite=OperationKind.DELETE_CONSUMER,
            record_success=_consumer_registered,
            after_finish=_consumer_outcome,
        ),
        OperationSpec(
            kind=OperationKind.DELETE_CONSUMER,
            target=Target.CONSUMER,
            call=_delete_consumer,
            describe=lambda companies, product, types: "Delete a webhook consumer",
            opposite=OperationKind.REGISTER_CONSUMER,
            # Already gone at Codat is the goal reached.
            not_found_is_success=True,
            after_finish=_consumer_outcome,
        ),
        OperationSpec(
            kind=OperationKind.LIST_CONSUMERS,
            target=Target.ACCOUNT,
            call=_list_consumers,
            describe=lambda companies, product, types: "Read the webhook consumers at Codat",
            record_success=_consumers_listed,
        ),
        # -- bank feeds (bankfeeds/calls.py) --
        OperationSpec(
            kind=OperationKind.CREATE_BANK_FEED_CONNECTION,
            target=Target.BANK_FEED,
            call=_bank_feeds("connection_create_at_codat"),
            describe=lambda companies, product, types: "Create a bank-feed connection",
            record_success=_bank_feeds("connection_created"),
            after_finish=_bank_feeds("connection_create_finished"),
        ),
        OperationSpec(
            kind=OperationKind.READ_BANK_FEED_LINK,
            target=Target.BANK_FEED,
            call=_bank_feeds("connection_read_at_codat"),
            describe=lambda companies, product, types: "Read a bank-feed connection's link",
            record_success=_bank_feeds("connection_read"),
        ),
        OperationSpec(
            kind=OperationKind.CREATE_SOURCE_ACCOUNT,
            target=Target.BANK_FEED,
            call=_bank_feeds("source_account_create_at_codat"),
            describe=lambda companies, product, types: "Create a bank-feed source account",
            record_success=_bank_feeds("source_account_answered"),
            after_finish=_bank_feeds("source_account_change_finished"),
        ),
        OperationSpec(
            kind=OperationKind.UPDATE_SOURCE_ACCOUNT,
            target=Target.BANK_FEED,
            call=_bank_feeds("source_account_update_at_codat"),
            describe=lambda companies, product, types: "Update a bank-feed source account",
            record_success=_bank_feeds("source_account_answered"),
            after_finish=_bank_feeds("source_account_change_finished"),
        ),
        OperationSpec(
            kind=OperationKind.DELETE_SOURCE_ACCOUNT,
            target=Target.BANK_FEED,
            call=_bank_feeds("source_account_delete_at_codat"),
            describe=lambda companies, product, types: "Delete a bank-feed source account",
            # Already gone at Codat is the goal reached.
            not_found_is_success=True,
            after_finish=_bank_feeds("source_account_change_finished"),
        ),
        OperationSpec(
            kind=OperationKind.READ_BANK_FEED_MAPPING,
            target=Target.BANK_FEED,
            call=_bank_feeds("mapping_read_at_codat"),
            describe=lambda companies, product, types: "Read a bank feed's account mapping",
            record_success=_bank_feeds("mapping_read"),
        ),
        OperationSpec(
            kind=OperationKind.SET_BANK_FEED_MAPPING,
            target=Target.BANK_FEED,
            call=_bank_feeds("mapping_set_at_codat"),
            describe=lambda companies, product, types: "Map a bank-feed source account",
            record_success=_bank_feeds("mapping_set"),
        ),
        OperationSpec(
            kind=OperationKind.PUSH_BANK_TRANSACTIONS,
            target=Target.BANK_FEED,
            call=_bank_feeds("push_at_codat"),
            describe=lambda companies, product, types: "Push bank transactions",
            record_success=_bank_feeds("push_answered"),
            after_finish=_bank_feeds("push_call_finished"),
        ),
        OperationSpec(
            kind=OperationKind.CHECK_BANK_FEED_PUSH,
            target=Target.BANK_FEED,
            call=_bank_feeds("push_read_at_codat"),
            describe=lambda companies, product, types: "Check a bank-transactions push",
            record_success=_bank_feeds("push_read"),
        ),
        # -- sync settings (syncsettings/calls.py) --
        OperationSpec(
            kind=OperationKind.READ_CLIENT_SYNC_SETTINGS,
            target=Target.ACCOUNT,
            call=_sync_settings("client_read_at_codat"),
            describe=lambda companies, product, types: "Read the client's sync settings",
            record_success=_sync_settings("client_read"),
        ),
        OperationSpec(
            kind=OperationKind.SET_CLIENT_SYNC_SETTINGS,
            target=Target.ACCOUNT,
            call=_sync_settings("client_set_at_codat"),
            describe=lambda companies, product, types: "Set the client's sync settings",
            record_success=_sync_settings("client_set"),
        ),
        OperationSpec(
            kind=OperationKind.READ_COMPANY_SYNC_SETTINGS,
            target=Target.COMPANY,
            call=_sync_settings("company_read_at_codat"),
            describe=lambda companies, product, types: f"Read the sync settings of {companies}",
            record_success=_sync_settings("company_read"),
            offered_in_bulk=False,
        ),
        OperationSpec(
            kind=OperationKind.SET_COMPANY_SYNC_SETTINGS,
            target=Target.COMPANY,
            call=_sync_settings("company_set_at_codat"),
            describe=lambda companies, product, types: f"Set the sync settings of {companies}",
            record_success=_sync_settings("company_set"),
            offered_in_bulk=False,
        ),
    )
}

# Kinds whose rows have an opposite on the same target (the worker's ordering check).
KINDS_WITH_OPPOSITE = tuple(kind for kind, spec in SPECS.items() if spec.opposite)
COMPANY_KINDS = tuple(
    kind for kind, spec in SPECS.items() if spec.on_companies and spec.offered_in_bulk
)


def spec_for(kind: str) -> OperationSpec:
    return SPECS[kind]
