from celery import shared_task


@shared_task(name="core.tasks.ping", acks_late=False)
def ping_task() -> str:
    """The canary task of the health check; acknowledging early is fine, it changes nothing."""
    return "pong"


@shared_task(name="core.tasks.count_dashboard_figures", acks_late=True, ignore_result=True)
def count_dashboard_figures_task() -> str:
    from core.dashboard_counts import count_dashboard_figures

    return count_dashboard_figures().counted_at.isoformat()
