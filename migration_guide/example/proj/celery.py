from celery import Celery

app = Celery("proj", broker="redis://localhost:6379/0", backend="redis://localhost:6379/0", include=["proj.tasks"])
app.conf.update(
    task_default_queue="default",
    task_routes={"proj.tasks.send_*": {"queue": "emails"}},
    result_expires=3600,
    worker_max_tasks_per_child=100,
    # read by qtasks_compat only (Celery ignores unknown settings): speak Celery's wire protocol
    # and result format, so Celery and qtasks workers can share this Redis during the migration
    qtasks_celery_protocol=True,
    qtasks_celery_results=True,
)
