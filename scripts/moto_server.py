"""moto server for orderflow's tests and local stack: moto's own server (`moto_server`), with one
difference: DynamoDB requests are served one at a time.

moto's server is threaded, and its DynamoDB backend checks a write's condition and then applies it
without a lock, so two concurrent conditional writes (the optimistic-concurrency race every
`TransactWriteItems` append relies on) can both succeed — which DynamoDB never allows. Serialising
the DynamoDB (and DynamoDB Streams) requests restores DynamoDB's atomic conditional writes; other
services (SQS long polls) stay concurrent.

Usage: python scripts/moto_server.py -H 127.0.0.1 -p PORT
"""

import argparse
import signal
import sys
import threading

from werkzeug.serving import run_simple
from moto.moto_server.werkzeug_app import (
    DomainDispatcherApplication,
    MotoRequestHandler,
    create_backend_app,
)

_DYNAMODB = threading.Lock()


def serialize_dynamodb(app):
    def wrapped(environ, start_response):
        target = environ.get("HTTP_X_AMZ_TARGET", "")
        if not target.startswith("DynamoDB"):
            return app(environ, start_response)
        with _DYNAMODB:
            body = app(environ, start_response)
            try:
                return [b"".join(body)]
            finally:
                close = getattr(body, "close", None)
                if close:
                    close()

    return wrapped


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("-H", "--host", default="127.0.0.1")
    parser.add_argument("-p", "--port", type=int, required=True)
    args = parser.parse_args()
    signal.signal(signal.SIGTERM, lambda *_: sys.exit(0))
    signal.signal(signal.SIGINT, lambda *_: sys.exit(0))
    app = DomainDispatcherApplication(create_backend_app)
    run_simple(
        args.host,
        args.port,
        serialize_dynamodb(app),
        threaded=True,
        request_handler=MotoRequestHandler,
    )


if __name__ == "__main__":
    main()
