from django.urls import path

from webhooks import views

app_name = "webhooks"

urlpatterns = [
    path("codat/", views.codat_webhook, name="codat"),
    # A consumer registered without the trailing slash: APPEND_SLASH cannot redirect a POST
    # (it raises in DEBUG, and a 301 would lose the body), so the same view answers here too.
    path("codat", views.codat_webhook, name="codat_without_slash"),
]
