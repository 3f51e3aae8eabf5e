from qtasks import QueueTasks


def test_roundtrip_through_worker_process(redis_url, app_name, start_worker):
    start_worker()
    client = QueueTasks(name=app_name, broker_url=redis_url)
    task = client.add_task("add", 2, 3, timeout=10)
    assert task is not None and task.status == "success" and task.returning == 5


def test_roundtrip_in_process(redis_url, app_name, inproc_worker):
    app = QueueTasks(name=app_name, broker_url=redis_url)

    @app.task
    def mul(a, b):
        return a * b

    inproc_worker(app)
    assert mul.add_task(3, 4, timeout=10).returning == 12
