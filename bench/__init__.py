"""The benchmark: the service against the framework floor under gunicorn and wrk (`bench/run`)."""
