"""The legacy Celery app, unchanged: Celery code only, no qtasks import.

``billing.charge`` is still defined here because callers import it from here (and a rollback would route it
back to the Celery worker); ``task_routes`` sends its messages to the qtasks worker.
"""

from celery import Celery

app = Celery("legacy")
app.config_from_object("celeryconfig")


@app.task(name="reports.build")
def build_report(year):
    return f"report {year} built by Celery"


@app.task(name="billing.charge")
def charge(order_id, amount):
    return f"order {order_id}: charged {amount:.2f} by Celery"
