#!/usr/bin/env python3
"""Serve moto's WSGI app single-threaded for the local stand-in.

moto's own server (`moto_server`) is threaded; its TransactWriteItems deep-copies the
tables it touches and restores the copy when a transaction is cancelled, so under
concurrency a cancelled transaction can wipe another request's committed write.
Serving one request at a time avoids that.

    python3 moto_server.py --port 5000 [--host 127.0.0.1] [--parent-pid PID]

With --parent-pid the process exits as soon as that process is gone (or this
process is re-parented), so the emulator never outlives the process that started it.
"""

import argparse
import logging
import os
import sys
import threading
import time


def _watch_parent(parent_pid: int) -> None:
    original_ppid = os.getppid()

    def alive(pid: int) -> bool:
        try:
            os.kill(pid, 0)
        except ProcessLookupError:
            return False
        except PermissionError:
            return True  # exists, owned by someone else
        return True

    while True:
        time.sleep(0.5)
        if os.getppid() != original_ppid or not alive(parent_pid):
            os._exit(0)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--host", default="127.0.0.1")
    parser.add_argument("--port", type=int, required=True)
    parser.add_argument("--parent-pid", type=int, default=None)
    args = parser.parse_args()

    if args.parent_pid is not None:
        threading.Thread(
            target=_watch_parent, args=(args.parent_pid,), daemon=True, name="parent-watch"
        ).start()

    # Per-request access logs would drown the stand-in's own output.
    logging.getLogger("werkzeug").setLevel(logging.WARNING)

    from moto.moto_server.werkzeug_app import (
        DomainDispatcherApplication,
        create_backend_app,
    )
    from werkzeug.serving import run_simple

    _bound_streams()
    _keep_streams_through_cancelled_transactions()
    moto_app = DomainDispatcherApplication(create_backend_app)

    def app(environ, start_response):
        # The emails SES accepted, for the stand-in's /_local/emails (moto keeps them
        # in its SES backend and offers no HTTP route to them).
        if environ.get("PATH_INFO") == "/_hub/ses/sent":
            return _sent_emails(start_response)
        # Requests served so far by operation, for `hub-bench sms` (AWS requests per
        # message): counted here, where every SDK call arrives, retries included.
        if environ.get("PATH_INFO") == "/_hub/requests":
            return _json(start_response, REQUESTS)
        operation = environ.get("HTTP_X_AMZ_TARGET") or "{} {}".format(
            environ.get("REQUEST_METHOD"), environ.get("PATH_INFO")
        )
        REQUESTS[operation] = REQUESTS.get(operation, 0) + 1
        return moto_app(environ, start_response)

    print(f"moto listening on http://{args.host}:{args.port}", file=sys.stderr, flush=True)
    run_simple(
        args.host,
        args.port,
        app,
        threaded=False,
        processes=1,
        use_reloader=False,
        use_debugger=False,
    )


REQUESTS = {}

# Records a table's stream keeps. DynamoDB keeps them 24 hours; moto keeps them all, so
# memory would grow as long as the stand-in runs. The stand-in's stream poller reads
# within a fraction of a second, far inside this bound.
STREAM_RECORDS_KEPT = 2000


def _bound_streams():
    from moto.dynamodb.models.table import StreamShard

    add = StreamShard.add

    def bounded_add(self, old, new):
        add(self, old, new)
        excess = len(self.items) - STREAM_RECORDS_KEPT
        if excess > 0:
            # Sequence numbers stay as they were: the first kept record's number is the
            # shard's new start (moto indexes records by number - start).
            del self.items[:excess]
            self.starting_sequence_number += excess

    StreamShard.add = bounded_add


def _keep_streams_through_cancelled_transactions():
    """A cancelled TransactWriteItems leaves no stream record, as on DynamoDB.

    moto rolls a cancelled transaction back by putting back a deep copy of each table
    taken before it. Copying the stream shard with it would cost every transaction the
    shard's records, and readers hold iterators on the shard object itself, so they would
    go on reading a discarded shard. The shard is therefore shared, not copied: after a
    cancelled transaction it is cut back to the records it had before and joins the
    restored table.
    """
    from moto.dynamodb.models import DynamoDBBackend
    from moto.dynamodb.models.table import StreamShard

    StreamShard.__deepcopy__ = lambda self, memo: self
    transact = DynamoDBBackend.transact_write_items

    def guarded(self, transact_items):
        before = {
            name: (table.stream_shard, table.stream_shard.starting_sequence_number + len(table.stream_shard.items))
            for name, table in self.tables.items()
            if table.stream_shard is not None
        }
        try:
            return transact(self, transact_items)
        except Exception:
            for name, (shard, next_sequence) in before.items():
                table = self.tables.get(name)
                if table is None:
                    continue
                # Records numbered from next_sequence on came from this transaction.
                del shard.items[max(0, next_sequence - shard.starting_sequence_number):]
                shard.table = table
                table.stream_shard = shard
            raise

    DynamoDBBackend.transact_write_items = guarded


def _json(start_response, value):
    import json

    body = json.dumps(value).encode()
    start_response("200 OK", [("Content-Type", "application/json"), ("Content-Length", str(len(body)))])
    return [body]


def _sent_emails(start_response):
    import json

    from moto.ses import ses_backends

    sent = []
    for account in ses_backends.values():
        for backend in account.values():
            for message in backend.sent_messages:
                sent.append(
                    {
                        "id": getattr(message, "id", None),
                        "source": getattr(message, "source", None),
                        "to": list(getattr(message, "destinations", {}).get("ToAddresses", [])),
                        "subject": getattr(message, "subject", None),
                        "body": getattr(message, "body", None),
                    }
                )
    body = json.dumps(sent).encode()
    start_response("200 OK", [("Content-Type", "application/json"), ("Content-Length", str(len(body)))])
    return [body]


if __name__ == "__main__":
    main()
