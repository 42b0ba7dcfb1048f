"""Simulated calls: test mode plays the platform's side of a call, delivering its webhooks.

runner.py runs a call from the request (schemas.py) to its record: agents.py says which agents
it involves and where their events go, messages.py what each delivery carries, faults.py what
the call's faults do to it, delivery.py sends it over HTTP within bounds.py, answers.py reads
what comes back, and records.py keeps the calls and the journal of their deliveries.
"""
