"""Bank feeds: a bank's source accounts at Codat and the transactions it pushes to them.

A bank-feed connection is a company's connection to a bank-feeds platform; its source accounts
are the bank's accounts as Codat knows them; each transaction is stored once, keyed by the bank's
own id, and travels waiting -> in a push -> synced (or set aside, with the reason). A push is one
batch of at most 1,000 transactions of one account, followed until Codat says Success, Failed or
TimedOut. Every call to Codat is an operation row (operations/kinds.py); these tables are the
desired state and what Codat answered.
"""

from django.db import models
from django.db.models import Q


class Platform(models.TextChoices):
    """Codat's bank-feeds platform keys (codat-domain.md §5)."""

    QBO = "hcws", "QuickBooks Online Bank Feeds"
    NETSUITE = "akxx", "Oracle NetSuite"
    XERO = "gbol", "Xero"
    FREEAGENT = "fbrh", "FreeAgent"
    SAGE = "olpr", "Sage Bank Feeds"


class ConnectionState(models.TextChoices):
    CREATING = "creating", "Being created at Codat"
    CREATED = "created", "Created"
    FAILED = "failed", "Codat refused it"


class BankFeedConnection(models.Model):
    """A company's connection to a bank-feeds platform, as the portal asked for it."""

    company = models.ForeignKey(
        "companies.Company", on_delete=models.CASCADE, related_name="bank_feed_connections"
    )
    platform = models.CharField(max_length=4, choices=Platform.choices)
    state = models.CharField(
        max_length=16, choices=ConnectionState.choices, default=ConnectionState.CREATING
    )
    codat_id = models.UUIDField("connection (Codat id)", null=True, blank=True, unique=True)
    # The SMB's link; for QuickBooks Online it carries a one-time code that lasts an hour.
    link_url = models.URLField(max_length=1000, blank=True)
    link_url_fetched_at = models.DateTimeField(null=True, blank=True)
    last_error = models.TextField(blank=True)
    created_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        ordering = ("company", "id")
        constraints = (
            models.CheckConstraint(
                condition=Q(platform__in=Platform.values), name="bank_feed_platform_valid"
            ),
            models.CheckConstraint(
                condition=Q(state__in=ConnectionState.values), name="bank_feed_connection_state"
            ),
        )

    def __str__(self):
        return f"{self.company.name} · {self.get_platform_display()}"


class AccountType(models.TextChoices):
    """SourceAccountV2.accountType."""

    CHECKING = "checking", "Checking"
    SAVINGS = "savings", "Savings"
    LOAN = "loan", "Loan"
    CREDIT_CARD = "creditCard", "Credit card"
    PREPAID_CARD = "prepaidCard", "Prepaid card"


class AccountState(models.TextChoices):
    """Where the portal's wish for the account stands at Codat."""

    CREATING = "creating", "Being created at Codat"
    ACTIVE = "active", "At Codat"
    UPDATING = "updating", "Being updated at Codat"
    DELETING = "deleting", "Being deleted at Codat"
    DELETED = "deleted", "Deleted"
    FAILED = "failed", "Codat refused it"


class MappingStatus(models.TextChoices):
    """SourceAccount.status at Codat: `pending` until the SMB maps it."""

    PENDING = "pending", "Pending (not mapped)"
    CONNECTING = "connecting", "Connecting"
    CONNECTED = "connected", "Connected"
    DISCONNECTED = "disconnected", "Disconnected"
    UNKNOWN = "unknown", "Unknown"


class SourceAccount(models.Model):
    """One of the bank's accounts, fed to the SMB's accounting software (Codat's v2 fields)."""

    connection = models.ForeignKey(
        BankFeedConnection, on_delete=models.CASCADE, related_name="source_accounts"
    )
    # Codat's `id`: the bank's own id for the account.
    account_id = models.CharField(max_length=255)
    account_name = models.CharField(max_length=255)
    account_type = models.CharField(max_length=16, choices=AccountType.choices)
    account_number = models.CharField(max_length=64)
    sort_code = models.CharField(max_length=16, blank=True)
    currency = models.CharField(max_length=3)
    balance = models.DecimalField(max_digits=18, decimal_places=2)
    routing_info = models.JSONField(default=dict, blank=True)
    account_info = models.JSONField(default=dict, blank=True)
    state = models.CharField(
        max_length=16, choices=AccountState.choices, default=AccountState.CREATING
    )
    mapping_status = models.CharField(
        max_length=16, choices=MappingStatus.choices, default=MappingStatus.PENDING
    )
    feed_start_date = models.DateTimeField(null=True, blank=True)
    target_account_id = models.CharField(max_length=255, blank=True)
    target_account_name = models.CharField(max_length=255, blank=True)
    # What Codat offers to map the account to (already filtered by its currency and type), as
    # the last read of the mapping gave it: the SMB's page shows these.
    target_account_options = models.JSONField(default=list, blank=True)
    # Codat's reason when the SMB's last mapping request failed.
    mapping_error = models.TextField(blank=True)
    # When Codat last told the portal the mapping status (API answer or webhook): an older
    # report never overwrites a newer one.
    mapping_observed_at = models.DateTimeField(null=True, blank=True)
    last_error = models.TextField(blank=True)
    created_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        ordering = ("connection", "account_name", "id")
        constraints = (
            models.UniqueConstraint(
                fields=("connection", "account_id"), name="bank_feed_account_unique"
            ),
            models.CheckConstraint(
                condition=Q(account_type__in=AccountType.values), name="bank_feed_account_type"
            ),
            models.CheckConstraint(
                condition=Q(state__in=AccountState.values), name="bank_feed_account_state"
            ),
            models.CheckConstraint(
                condition=Q(mapping_status__in=MappingStatus.values),
                name="bank_feed_mapping_status",
            ),
        )

    def __str__(self):
        return f"{self.account_name} ({self.account_id})"

    def codat_body(self) -> dict:
        """The SourceAccountV2 body Codat is sent."""
        body = {
            "id": self.account_id,
            "accountName": self.account_name,
            "accountType": self.account_type,
            "accountNumber": self.account_number,
            "currency": self.currency,
            "balance": float(self.balance),
        }
        if self.sort_code:
            body["sortCode"] = self.sort_code
        if self.routing_info:
            body["routingInfo"] = self.routing_info
        if self.account_info:
            body["accountInfo"] = self.account_info
        return body


class PushStatus(models.TextChoices):
    SENDING = "sending", "Being sent"  # its operation row has not had Codat's answer yet
    PENDING = "pending", "Pending at Codat"
    SUCCESS = "success", "Success"
    FAILED = "failed", "Failed"
    TIMED_OUT = "timed_out", "Timed out"
    REFUSED = "refused", "Refused (never reached Codat)"


IN_FLIGHT = (PushStatus.SENDING, PushStatus.PENDING)
# Codat's PushOperationStatus -> ours.
CODAT_PUSH_STATUS = {
    "Pending": PushStatus.PENDING,
    "Success": PushStatus.SUCCESS,
    "Failed": PushStatus.FAILED,
    "TimedOut": PushStatus.TIMED_OUT,
}


class BankFeedPush(models.Model):
    """One batch of one account's transactions, sent in one call and followed to its outcome."""

    account = models.ForeignKey(SourceAccount, on_delete=models.CASCADE, related_name="pushes")
    status = models.CharField(max_length=16, choices=PushStatus.choices, default=PushStatus.SENDING)
    push_operation_key = models.UUIDField(null=True, blank=True, unique=True)
    transaction_count = models.PositiveIntegerField()
    first_date = models.DateTimeField()
    last_date = models.DateTimeField()
    # Set just before the call leaves: a retried call looks at Codat's push history from here
    # to find a push whose answer was lost.
    sent_at = models.DateTimeField(null=True, blank=True)
    completed_at = models.DateTimeField(null=True, blank=True)
    error = models.TextField(blank=True)
    created_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        ordering = ("-created_at", "-id")
        constraints = (
            models.CheckConstraint(
                condition=Q(status__in=PushStatus.values), name="bank_feed_push_status"
            ),
            # One push in flight per account: Codat wants each account's transactions in order.
            models.UniqueConstraint(
                fields=("account",),
                condition=Q(status__in=("sending", "pending")),
                name="bank_feed_one_push_in_flight",
            ),
        )

    def __str__(self):
        return f"Push {self.pk} of {self.account}: {self.transaction_count} ({self.status})"


class TransactionType(models.TextChoices):
    """Codat's bank transaction types (BankTransactions.transactionType)."""

    UNKNOWN = "Unknown"
    CREDIT = "Credit"
    DEBIT = "Debit"
    INT = "Int"
    DIV = "Div"
    FEE = "Fee"
    SER_CHG = "SerChg"
    DEP = "Dep"
    ATM = "Atm"
    POS = "Pos"
    XFER = "Xfer"
    CHECK = "Check"
    PAYMENT = "Payment"
    CASH = "Cash"
    DIRECT_DEP = "DirectDep"
    DIRECT_DEBIT = "DirectDebit"
    REPEAT_PMT = "RepeatPmt"
    OTHER = "Other"


class TransactionState(models.TextChoices):
    WAITING = "waiting", "Waiting"
    IN_PUSH = "in_push", "In a push"
    SYNCED = "synced", "Synced"
    SET_ASIDE = "set_aside", "Set aside"


class BankTransaction(models.Model):
    """One bank transaction, stored once per account under the bank's id."""

    account = models.ForeignKey(
        SourceAccount, on_delete=models.CASCADE, related_name="transactions"
    )
    transaction_id = models.CharField(max_length=255)
    # The local date-time Codat reads (it ignores any offset): stored as that wall time in UTC.
    date = models.DateTimeField()
    amount = models.DecimalField(max_digits=18, decimal_places=2)
    balance = models.DecimalField(max_digits=18, decimal_places=2, null=True, blank=True)
    transaction_type = models.CharField(max_length=16, choices=TransactionType.choices, blank=True)
    description = models.TextField(blank=True)
    counterparty = models.CharField(max_length=255, blank=True)
    reference = models.CharField(max_length=255, blank=True)
    reconciled = models.BooleanField(null=True, blank=True)
    # A digest of the fields above: a resubmission is a no-op only if it says the same thing.
    content_hash = models.CharField(max_length=64)
    warnings = models.JSONField(default=list, blank=True)
    state = models.CharField(
        max_length=16, choices=TransactionState.choices, default=TransactionState.WAITING
    )
    set_aside_reason = models.TextField(blank=True)
    push = models.ForeignKey(
        BankFeedPush,
        on_delete=models.SET_NULL,
        null=True,
        blank=True,
        related_name="transactions",
    )
    # Pushes of this transaction that Codat answered Failed or TimedOut.
    failed_pushes = models.PositiveSmallIntegerField(default=0)
    created_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        ordering = ("account", "date", "id")
        indexes = (models.Index(fields=("account", "state", "date"), name="bank_tx_account_queue"),)
        constraints = (
            models.UniqueConstraint(
                fields=("account", "transaction_id"), name="bank_transaction_unique"
            ),
            models.CheckConstraint(
                condition=Q(state__in=TransactionState.values), name="bank_transaction_state"
            ),
            models.CheckConstraint(
                condition=Q(transaction_type__in=["", *TransactionType.values]),
                name="bank_transaction_type_valid",
            ),
            models.CheckConstraint(
                condition=~Q(state="in_push") | Q(push__isnull=False),
                name="bank_transaction_in_push_has_push",
            ),
        )

    def __str__(self):
        return f"{self.transaction_id} {self.date:%Y-%m-%d} {self.amount}"

    def codat_body(self) -> dict:
        body = {
            "id": self.transaction_id,
            # No offset: Codat reads the local date-time as given.
            "date": self.date.strftime("%Y-%m-%dT%H:%M:%S"),
            "amount": float(self.amount),
        }
        if self.balance is not None:
            body["balance"] = float(self.balance)
        if self.transaction_type:
            body["transactionType"] = self.transaction_type
        for name, value in (
            ("description", self.description),
            ("counterparty", self.counterparty),
            ("reference", self.reference),
        ):
            if value:
                body[name] = value
        if self.reconciled is not None:
            body["reconciled"] = self.reconciled
        return body
