"""Notification tasks (routed to the proj.notifications queue)."""
from celery import shared_task
from proj import settings


@shared_task(ignore_result=False)
def notify(receipt, email):
    message = f"to {email}: order {receipt['order_id']} charged {receipt['charged']:.2f}"
    settings.NOTIFY_OUTBOX.append(message)
    return message


@shared_task(name="notifications.tasks.send_digest")
def send_digest(period):
    return f"{period} digest: {len(settings.NOTIFY_OUTBOX)} notifications"
