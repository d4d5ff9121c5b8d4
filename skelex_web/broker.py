"""What the Celery broker still holds for one task: messages waiting in its queue, and messages
delivered to a worker and not yet acknowledged.

The stuck-image sweep (``learning.services.requeue_stuck``) reads it to tell an image whose analysis
message was lost (queue it again) from one that waits behind a long queue or is being worked on
(leave it: sending it again would grow a backlog with duplicates on every sweep).

Only the Redis transport can be read (kombu keeps a queue as a Redis list, one per priority step,
and the delivered, unacknowledged messages in the ``unacked`` hash until the worker acknowledges
them or the visibility timeout hands them to another worker). Any other broker answers None:
unknown.
"""

from __future__ import annotations

from typing import Any

from kombu.utils.json import loads

READABLE_SCHEMES = ("redis://", "rediss://", "unix://")


def pending_calls(task_name: str, broker_url: str | None = None) -> list[tuple[list[Any], dict[str, Any]]] | None:
    """The ``(args, kwargs)`` of every ``task_name`` message the broker holds, or None if it cannot tell.

    Args:
        task_name: a Celery task name; its queue comes from the task routes.
        broker_url: the broker to read; None = the app's (``CELERY_BROKER_URL``).

    Raises:
        kombu / redis connection errors: the broker is unreachable (nothing can be decided then).
    """
    from skelex_web.celery import app

    url = str(broker_url or app.conf.broker_url or "")
    if not url.startswith(READABLE_SCHEMES):
        return None
    queue = app.amqp.router.route({}, task_name)["queue"].name
    with app.connection_for_read(url) as conn:
        channel: Any = conn.default_channel
        lists = [queue] + [f"{queue}{channel.sep}{step}" for step in channel.priority_steps if step]
        # One MULTI/EXEC snapshot: a message moving between a queue and the unacked hash meanwhile
        # (delivered, or restored after the visibility timeout) is seen exactly once.
        with channel.client.pipeline(transaction=True) as pipe:
            for name in lists:
                pipe.lrange(name, 0, -1)
            pipe.hvals(channel.unacked_key)
            *waiting, unacked = pipe.execute()
        payloads = [loads(raw) for items in waiting for raw in items]
        payloads += [loads(raw)[0] for raw in unacked]  # [message, exchange, routing key]
        calls = []
        for payload in payloads:
            if (payload.get("headers") or {}).get("task") != task_name:
                continue
            # Task protocol 2 (Celery's default): the task name in the headers, [args, kwargs, embed] in the body.
            args, kwargs, _ = channel.Message(payload, channel=channel).decode()
            calls.append((list(args), dict(kwargs)))
        return calls
