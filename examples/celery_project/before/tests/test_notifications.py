from notifications.tasks import notify, send_digest
from proj import settings


def test_notify_records_the_message():
    assert notify.s("x@y.z").delay({"order_id": 3, "charged": 1.5}).get() == "to x@y.z: order 3 charged 1.50"
    assert settings.NOTIFY_OUTBOX == ["to x@y.z: order 3 charged 1.50"]


def test_digest_counts_notifications():
    notify({"order_id": 1, "charged": 1}, "a@b.c")
    assert send_digest.delay("daily").get() == "daily digest: 1 notifications"


def test_notifications_are_routed_to_their_queue():
    from proj import celery_app

    assert celery_app.conf.task_routes == {"notifications.*": {"queue": "proj.notifications"}}
