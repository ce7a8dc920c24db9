"""An enate-bridge event consumer in Python: the starting point for a worker.

    pip install -r examples/python/requirements.txt
    AMQP_URL=amqp://guest:guest@127.0.0.1:5672/%2f QUEUE=enate.tickets.resolved \
        python examples/python/consumer.py

It checks every event against the bridge's JSON Schema (the file in schemas/, or
the running bridge's own copy with SCHEMA=http://localhost:9091/schemas/event.schema.json),
prints one line per event on standard output, and shows what every worker needs:

- manual acks, sent only once the work is done, with a prefetch (PREFETCH, default 32);
- duplicates dropped by id: Enate sends duplicates, and a message is delivered again
  when the connection breaks before its ack arrives;
- a message that is not a valid event rejected without requeue, so it cannot loop
  (give the queue a dead-letter exchange to keep such messages).

MAX_MESSAGES=N stops after N messages (for tests); otherwise it runs until Ctrl-C.
Replace handle_event with your own work.
"""

import collections
import json
import os
import pathlib
import sys
import urllib.request

import jsonschema
import pika

DEFAULT_SCHEMA = pathlib.Path(__file__).resolve().parents[2] / "schemas" / "event.schema.json"


def load_schema(location):
    if location.startswith(("http://", "https://")):
        with urllib.request.urlopen(location, timeout=10) as response:
            return json.load(response)
    return json.loads(pathlib.Path(location).read_text(encoding="utf-8"))


class RecentIds:
    """The last `capacity` event ids: bounded memory, enough for Enate's duplicates
    (seconds apart) and redeliveries after a reconnect. With several workers, make
    the work itself idempotent too (e.g. a unique key on the id)."""

    def __init__(self, capacity=10_000):
        self.capacity = capacity
        self.ids = collections.OrderedDict()

    def insert(self, event_id):
        """False when the id was seen recently."""
        if event_id in self.ids:
            return False
        self.ids[event_id] = None
        if len(self.ids) > self.capacity:
            self.ids.popitem(last=False)
        return True


def handle_event(event):
    """The work. Here: one line per event."""
    data = event["data"]
    text = lambda value: "-" if value is None else value
    print(
        f"{event['time']} {event['type']} subject={text(event.get('subject'))} "
        f"reference={text(data['reference'])} {text(data['process_type'])}/{text(data['status'])} "
        f"id={event['id']}",
        flush=True,
    )


def main():
    url = os.environ.get("AMQP_URL", "amqp://guest:guest@127.0.0.1:5672/%2f")
    queue = os.environ.get("QUEUE", "enate.tickets.resolved")
    prefetch = int(os.environ.get("PREFETCH", "32"))
    max_messages = int(os.environ.get("MAX_MESSAGES", "0"))
    # Formats checked too (uuid, date-time): the schema promises them.
    validator = jsonschema.Draft202012Validator(
        load_schema(os.environ.get("SCHEMA", str(DEFAULT_SCHEMA))),
        format_checker=jsonschema.Draft202012Validator.FORMAT_CHECKER,
    )
    recent = RecentIds()
    connection = pika.BlockingConnection(pika.URLParameters(url))
    channel = connection.channel()
    channel.basic_qos(prefetch_count=prefetch)
    # Passive: only checks that the queue exists; whoever owns the topology declares it.
    channel.queue_declare(queue, passive=True)
    print(f"consumer: consuming {queue}", file=sys.stderr)
    handled = 0
    try:
        for method, properties, body in channel.consume(queue, inactivity_timeout=None):
            handled += 1
            try:
                event = json.loads(body)
                errors = sorted(validator.iter_errors(event), key=lambda e: list(e.path))
            except ValueError as error:
                event, errors = None, [error]
            if errors:
                # Requeued, it would come straight back, forever.
                print(f"consumer: rejected message {properties.message_id}: not a valid event: "
                      f"{errors[0].message if hasattr(errors[0], 'message') else errors[0]}",
                      file=sys.stderr)
                channel.basic_reject(method.delivery_tag, requeue=False)
            else:
                # message_id is the event id; a retried Enate delivery gets the same one.
                if recent.insert(properties.message_id or event["id"]):
                    handle_event(event)
                else:
                    print(f"consumer: duplicate {event['id']} skipped", file=sys.stderr)
                channel.basic_ack(method.delivery_tag)
            if max_messages and handled >= max_messages:
                break
    except KeyboardInterrupt:
        pass
    finally:
        # Closing hands prefetched, unacked messages back to the queue at once.
        channel.cancel()
        connection.close()
    print("consumer: stopped", file=sys.stderr)


if __name__ == "__main__":
    main()
