"""The calls simulated in each namespace and the journal of their deliveries, in tables, so
that every worker (and every host on one database) sees the same.
"""

from peewee import AutoField, TextField

from models import DEFAULT_NAMESPACE, BaseModel, JsonText, insert_rows
from store import write_transaction


class CallNotFound(LookupError):
    """No call with that id was simulated in the namespace."""


class SimulatedCall(BaseModel):
    sequence = AutoField()
    namespace = TextField()
    call_id = TextField()
    document = JsonText()

    class Meta:
        indexes = ((("namespace", "call_id"), True),)


class Delivery(BaseModel):
    sequence = AutoField()
    namespace = TextField()
    call_id = TextField()
    event = TextField()
    document = JsonText()

    class Meta:
        indexes = ((("namespace", "call_id"), False),)


TABLES = (SimulatedCall, Delivery)


def record_call(call, deliveries, namespace=DEFAULT_NAMESPACE):
    """Keep a finished call and add its deliveries (sent, faulted or not sent) to the journal."""
    with write_transaction():
        SimulatedCall.create(namespace=namespace, call_id=call["id"], document=call)
        insert_rows(
            Delivery,
            [
                {
                    "namespace": namespace,
                    "call_id": delivery["call_id"],
                    "event": delivery["event"],
                    "document": delivery,
                }
                for delivery in deliveries
            ],
        )


def deliveries(event=None, call_id=None, namespace=DEFAULT_NAMESPACE):
    """The namespace's deliveries, oldest first, optionally only one event's or one call's."""
    select = Delivery.select(Delivery.document).where(Delivery.namespace == namespace)
    if event is not None:
        select = select.where(Delivery.event == event)
    if call_id is not None:
        select = select.where(Delivery.call_id == call_id)
    return [row.document for row in select.order_by(Delivery.sequence)]


def clear_deliveries(namespace=DEFAULT_NAMESPACE):
    """Empty the namespace's journal of deliveries; the calls stay, without them."""
    with write_transaction():
        Delivery.delete().where(Delivery.namespace == namespace).execute()


def calls(namespace=DEFAULT_NAMESPACE):
    """The namespace's calls, oldest first, each with its deliveries still in the journal."""
    by_call = {}
    for delivery in deliveries(namespace=namespace):
        by_call.setdefault(delivery["call_id"], []).append(delivery)
    select = SimulatedCall.select(SimulatedCall.document).where(
        SimulatedCall.namespace == namespace
    )
    return [
        {**row.document, "deliveries": by_call.get(row.document["id"], [])}
        for row in select.order_by(SimulatedCall.sequence)
    ]


def call(call_id, namespace=DEFAULT_NAMESPACE):
    """One call with its deliveries; raises CallNotFound."""
    row = SimulatedCall.get_or_none(
        (SimulatedCall.namespace == namespace) & (SimulatedCall.call_id == call_id)
    )
    if row is None:
        raise CallNotFound(call_id)
    return {**row.document, "deliveries": deliveries(call_id=call_id, namespace=namespace)}


def delete_namespace_calls(namespace=DEFAULT_NAMESPACE):
    """Forget a namespace's calls and deliveries, inside the caller's transaction."""
    for model in TABLES:
        model.delete().where(model.namespace == namespace).execute()
