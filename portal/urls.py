from django.contrib import admin
from django.urls import include, path

from core import views

admin.site.site_header = "Codat portal"
admin.site.site_title = "Codat portal"
admin.site.index_title = "Operations"

urlpatterns = [
    path("", views.home, name="home"),
    path("healthz/", views.healthz, name="healthz"),
    path("admin/", admin.site.urls),
    # Passkey ceremonies (django-otp-webauthn): JSON endpoints the sign-in and passkeys pages call.
    path("webauthn/", include("django_otp_webauthn.urls", namespace="otp_webauthn")),
    path("consent/", include("consent.urls")),
    path("bank-feeds/", include("bankfeeds.urls")),
    path("webhooks/", include("webhooks.urls")),
    path("api/v1/", include("api.urls")),
]
