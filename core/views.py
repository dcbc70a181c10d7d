from django.http import JsonResponse
from django.shortcuts import redirect
from django.views.decorators.cache import never_cache
from django.views.decorators.http import require_GET

from core.health import check_all


@require_GET
def home(request):
    return redirect("admin:index")


@never_cache
@require_GET
def healthz(request):
    """Liveness for load balancers; `?worker=1` also proves a worker consumes tasks."""
    checks = check_all(include_worker=request.GET.get("worker") == "1")
    healthy = all(checks.values())
    return JsonResponse({"ok": healthy, **checks}, status=200 if healthy else 503)
