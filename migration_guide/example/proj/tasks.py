from celery import chain, shared_task
from celery.utils.log import get_task_logger

logger = get_task_logger(__name__)


@shared_task(bind=True, max_retries=3, default_retry_delay=1)
def add(self, x, y):
    logger.info("adding %s + %s (try %s)", x, y, self.request.retries)
    return x + y


@shared_task
def send_welcome_email(user):
    return f"welcome mail sent to {user}"


def signup(user):
    """Called by the web app: one chain, two queues."""
    return chain(add.s(1, 1), add.s(40)).apply_async(), send_welcome_email.apply_async((user,), countdown=0)
