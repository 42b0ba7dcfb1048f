"""The gunicorn worker the service is served with (serving.py names it as `worker_class`)."""

from worker.buffered import BufferedThreadWorker

__all__ = ["BufferedThreadWorker"]
