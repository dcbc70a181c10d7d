from django.urls import path
from drf_spectacular.views import SpectacularAPIView, SpectacularRedocView, SpectacularSwaggerView

from api import apis

app_name = "api"

# Ids in paths are plain strings: the views answer a malformed one with the same problem+json
# 404 as an unknown one (a path converter would give Django's HTML 404 instead).
urlpatterns = [
    path("schema/", SpectacularAPIView.as_view(), name="schema"),
    path("docs/", SpectacularSwaggerView.as_view(url_name="api:schema"), name="docs"),
    path("redoc/", SpectacularRedocView.as_view(url_name="api:schema"), name="redoc"),
    path("companies/", apis.CompanyListApi.as_view(), name="companies"),
    path(
        "bank-feed-companies/", apis.BankFeedCompanyOnboardApi.as_view(), name="bank-feed-companies"
    ),
    path("companies/<str:company_id>/", apis.CompanyDetailApi.as_view(), name="company"),
    path(
        "companies/<str:company_id>/products/",
        apis.CompanyProductAddApi.as_view(),
        name="company-product-add",
    ),
    path(
        "companies/<str:company_id>/products/<str:product>/remove/",
        apis.CompanyProductRemoveApi.as_view(),
        name="company-product-remove",
    ),
    path(
        "companies/<str:company_id>/products/<str:product>/refresh/",
        apis.CompanyProductRefreshApi.as_view(),
        name="company-product-refresh",
    ),
    path(
        "companies/<str:company_id>/refresh/",
        apis.CompanyRefreshApi.as_view(),
        name="company-refresh",
    ),
    path(
        "companies/<str:company_id>/consent/",
        apis.CompanyConsentApi.as_view(),
        name="company-consent",
    ),
    path(
        "companies/<str:company_id>/consent/events/",
        apis.CompanyConsentEventListApi.as_view(),
        name="company-consent-events",
    ),
    path(
        "companies/<str:company_id>/consent/receipts/<str:receipt_id>/",
        apis.CompanyConsentReceiptApi.as_view(),
        name="company-consent-receipt",
    ),
    path(
        "companies/<str:company_id>/consent/requests/",
        apis.CompanyConsentRequestListApi.as_view(),
        name="company-consent-requests",
    ),
    path(
        "companies/<str:company_id>/bank-feed-accounts/",
        apis.BankFeedAccountListApi.as_view(),
        name="bank-feed-accounts",
    ),
    path(
        "companies/<str:company_id>/bank-feed-accounts/<str:account_id>/update/",
        apis.BankFeedAccountUpdateApi.as_view(),
        name="bank-feed-account-update",
    ),
    path(
        "companies/<str:company_id>/bank-feed-accounts/<str:account_id>/delete/",
        apis.BankFeedAccountDeleteApi.as_view(),
        name="bank-feed-account-delete",
    ),
    path(
        "companies/<str:company_id>/bank-feed-connections/",
        apis.BankFeedConnectionListApi.as_view(),
        name="bank-feed-connections",
    ),
    path(
        "companies/<str:company_id>/bank-feed-connections/<str:connection_id>/",
        apis.BankFeedConnectionDetailApi.as_view(),
        name="bank-feed-connection",
    ),
    path(
        "companies/<str:company_id>/bank-feed-connections/<str:connection_id>/link/",
        apis.BankFeedConnectionLinkApi.as_view(),
        name="bank-feed-connection-link",
    ),
    path(
        "companies/<str:company_id>/bank-feed-accounts/<str:account_id>/transactions/",
        apis.BankFeedTransactionListApi.as_view(),
        name="bank-feed-transactions",
    ),
    path(
        "companies/<str:company_id>/bank-feed-accounts/<str:account_id>/pushes/",
        apis.BankFeedPushListApi.as_view(),
        name="bank-feed-pushes",
    ),
    path("operations/", apis.OperationListApi.as_view(), name="operations"),
    path("operations/<str:operation_id>/", apis.OperationDetailApi.as_view(), name="operation"),
    path("jobs/", apis.JobListApi.as_view(), name="jobs"),
    path("jobs/<str:job_id>/", apis.JobDetailApi.as_view(), name="job"),
    path("jobs/<str:job_id>/retry-failed/", apis.JobRetryFailedApi.as_view(), name="job-retry"),
    path("jobs/<str:job_id>/cancel-rest/", apis.JobCancelRestApi.as_view(), name="job-cancel"),
    path("webhook-events/", apis.WebhookEventListApi.as_view(), name="webhook-events"),
    path(
        "webhook-events/<str:event_id>/",
        apis.WebhookEventDetailApi.as_view(),
        name="webhook-event",
    ),
    path("products/", apis.ProductListApi.as_view(), name="products"),
    path("products/<str:product>/", apis.ProductDetailApi.as_view(), name="product"),
]
