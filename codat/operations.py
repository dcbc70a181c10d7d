"""The Codat operation behind each `CodatClient` method.

Names are the operationIds, HTTP methods and path templates of Codat's published OpenAPI
documents: Codat-Platform.yaml, and Codat-Bank-Feeds.yaml for the bank-feeds operations. The
client builds its URLs from these templates, and a test checks every entry against the documents.
"""

from dataclasses import dataclass


@dataclass(frozen=True)
class Operation:
    operation_id: str
    method: str
    path: str


OPERATIONS: dict[str, Operation] = {
    # Companies (Codat-Platform.yaml)
    "list_companies": Operation("list-companies", "GET", "/companies"),
    "create_company": Operation("create-company", "POST", "/companies"),
    "get_company": Operation("get-company", "GET", "/companies/{companyId}"),
    "replace_company": Operation("replace-company", "PUT", "/companies/{companyId}"),
    "update_company": Operation("update-company", "PATCH", "/companies/{companyId}"),
    "delete_company": Operation("delete-company", "DELETE", "/companies/{companyId}"),
    # Products
    "add_product": Operation(
        "add-product", "PUT", "/companies/{companyId}/products/{productIdentifier}"
    ),
    "remove_product": Operation(
        "remove-product", "DELETE", "/companies/{companyId}/products/{productIdentifier}"
    ),
    "refresh_product_data": Operation(
        "refresh-product-data",
        "POST",
        "/companies/{companyId}/products/{productIdentifier}/refresh",
    ),
    # Connections
    "list_connections": Operation("list-connections", "GET", "/companies/{companyId}/connections"),
    "create_connection": Operation(
        "create-connection", "POST", "/companies/{companyId}/connections"
    ),
    "get_connection": Operation(
        "get-connection", "GET", "/companies/{companyId}/connections/{connectionId}"
    ),
    "delete_connection": Operation(
        "delete-connection", "DELETE", "/companies/{companyId}/connections/{connectionId}"
    ),
    "unlink_connection": Operation(
        "unlink-connection", "PATCH", "/companies/{companyId}/connections/{connectionId}"
    ),
    # Refreshing data, data status, pull and push operations
    "refresh_all_data": Operation(
        "refresh-company-data", "POST", "/companies/{companyId}/data/all"
    ),
    "refresh_data_type": Operation(
        "refresh-data-type", "POST", "/companies/{companyId}/data/queue/{dataType}"
    ),
    "get_data_status": Operation(
        "get-company-data-status", "GET", "/companies/{companyId}/dataStatus"
    ),
    "list_pull_operations": Operation(
        "list-pull-operations", "GET", "/companies/{companyId}/data/history"
    ),
    "get_pull_operation": Operation(
        "get-pull-operation", "GET", "/companies/{companyId}/data/history/{datasetId}"
    ),
    "list_push_operations": Operation(
        "get-company-push-history", "GET", "/companies/{companyId}/push"
    ),
    "get_push_operation": Operation(
        "get-push-operation", "GET", "/companies/{companyId}/push/{pushOperationKey}"
    ),
    # Sync settings
    "get_client_sync_settings": Operation(
        "get-profile-syncSettings", "GET", "/profile/syncSettings"
    ),
    "set_client_sync_settings": Operation(
        "update-profile-syncSettings", "POST", "/profile/syncSettings"
    ),
    "get_company_sync_settings": Operation(
        "get-company-syncSettings", "GET", "/companies/{companyId}/syncSettings"
    ),
    "set_company_sync_settings": Operation(
        "set-company-syncSettings", "POST", "/companies/{companyId}/syncSettings"
    ),
    # Webhook consumers
    "list_webhook_consumers": Operation("list-webhook-consumers", "GET", "/webhooks"),
    "create_webhook_consumer": Operation("create-webhook-consumer", "POST", "/webhooks"),
    "delete_webhook_consumer": Operation(
        "delete-webhook-consumer", "DELETE", "/webhooks/{webhookId}"
    ),
    # Bank feeds (Codat-Bank-Feeds.yaml)
    "create_source_account": Operation(
        "create-source-account",
        "POST",
        "/companies/{companyId}/connections/{connectionId}/connectionInfo/bankFeedAccounts",
    ),
    "create_source_accounts": Operation(
        "create-batch-source-account",
        "POST",
        "/companies/{companyId}/connections/{connectionId}/connectionInfo/bankFeedAccounts/batch",
    ),
    "list_source_accounts": Operation(
        "list-source-accounts",
        "GET",
        "/companies/{companyId}/connections/{connectionId}/connectionInfo/bankFeedAccounts",
    ),
    "update_source_account": Operation(
        "update-source-account",
        "PATCH",
        "/companies/{companyId}/connections/{connectionId}/connectionInfo/bankFeedAccounts/{accountId}",
    ),
    "delete_source_account": Operation(
        "delete-source-account",
        "DELETE",
        "/companies/{companyId}/connections/{connectionId}/connectionInfo/bankFeedAccounts/{accountId}",
    ),
    "get_bank_account_mapping": Operation(
        "get-bank-account-mapping",
        "GET",
        "/companies/{companyId}/connections/{connectionId}/bankFeedAccounts/mapping",
    ),
    "set_bank_account_mapping": Operation(
        "create-bank-account-mapping",
        "POST",
        "/companies/{companyId}/connections/{connectionId}/bankFeedAccounts/mapping",
    ),
    "push_bank_transactions": Operation(
        "create-bank-transactions",
        "POST",
        "/companies/{companyId}/connections/{connectionId}/push/bankAccounts/{accountId}/bankTransactions",
    ),
}
