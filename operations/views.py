"""Endpoints for machines: the load balancer's health check and the Prometheus scrape."""
from __future__ import annotations

from secrets import compare_digest

from django.conf import settings
from django.http import HttpResponse, JsonResponse
from django.views.decorators.cache import never_cache
from django.views.decorators.http import require_GET

from .health import check_health
from .metrics import render_metrics


@never_cache
@require_GET
def health(request):
    """No login: 200 when every check passes, else 503 naming the failed parts."""
    report = check_health()
    return JsonResponse(report.as_dict(), status=200 if report.ok else 503)


def may_read_metrics(request) -> bool:
    if request.user.is_authenticated and request.user.is_staff:
        return True
    token = settings.METRICS_TOKEN
    header = request.headers.get("Authorization", "")
    return bool(token) and header.startswith("Bearer ") and compare_digest(header.removeprefix("Bearer ").strip(), token)


@never_cache
@require_GET
def metrics(request):
    """Staff sessions, or ``Authorization: Bearer $METRICS_TOKEN`` for the scraper."""
    if not may_read_metrics(request):
        status = 403 if request.user.is_authenticated else 401
        response = HttpResponse("Staff or the METRICS_TOKEN bearer token only.\n", status=status, content_type="text/plain")
        if status == 401:
            response["WWW-Authenticate"] = 'Bearer realm="metrics"'
        return response
    body, content_type = render_metrics(request.headers.get("Accept", ""))
    return HttpResponse(body, content_type=content_type)
