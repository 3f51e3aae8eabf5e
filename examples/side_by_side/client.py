"""An unchanged Celery client: it calls tasks of both engines through the legacy app.

``reports.build`` goes to Celery's queue and is run by the Celery worker; ``billing.charge`` is routed to the
``qtasks`` queue by ``task_routes`` and run by the qtasks worker. Both results come back through Celery's own
``AsyncResult.get()``, exceptions included.
"""

from legacy import build_report, charge

report = build_report.delay(2024)
paid = charge.delay(7, 19.5)
print("reports.build ->", report.get(timeout=20))
print("billing.charge ->", paid.get(timeout=20))
try:
    charge.delay(8, -1).get(timeout=20)
except ValueError as e:
    print("billing.charge -> ValueError:", e)
print("side by side: OK")
