"""The portal's URLs and one whose view fails, for the DEBUG error page's test
(tests/portal/test_log_privacy.py)."""

from django.urls import include, path


def fails(request):
    raise RuntimeError("a view that fails")


urlpatterns = [path("fails/", fails), path("", include("portal.urls"))]
