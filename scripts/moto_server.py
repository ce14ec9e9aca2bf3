"""moto server for orderflow's local stack and test suites (SQS, SNS, EventBridge; DynamoDB is
DynamoDB Local's: docs/local-emulators.md): moto's own server, with three per-request costs that
change nothing in what it answers taken out of it. Profiled under the local stack's load
(scripts/bench-local.sh, py-spy), moto 5.2.5 spent

- a fifth of its time working out which service a request is for: every request lists moto's
  package folder on disk (`moto.backends.list_of_moto_modules`) — the list is now read once;
- an eighth building a JSONPath parser (a yacc table) for every event it routes to a rule target,
  even without an input transformer — parsed paths are now cached (`jsonpath_ng.ext.parse`);
- a few percent logging every request line — werkzeug's request log is off (errors still show);
- and, as a queue's backlog grows, ever more: every `SendMessage` (an EventBridge target's, an SNS
  subscription's) reads one setting from the queue's attributes, and `ReceiveMessage` one per
  message, but moto computes all the attributes each time, the message counts included — a walk
  over every message in the queue. The attributes are now a mapping that computes each value
  when it is read (what `GetQueueAttributes` returns is unchanged);
- and 20 ms per SNS notification to an SQS subscription: each one made and signed a new X.509
  signing certificate (and kept it): a subscription now makes its certificate once, as SNS uses
  one for many messages; each message is still signed (SignatureVersion 2).

Usage: python scripts/moto_server.py -H 127.0.0.1 -p PORT
"""

import argparse
import base64
import functools
import json
import logging
import signal
import sys
from collections.abc import Mapping

import jsonpath_ng.ext
from moto import backends
from moto.core.utils import camelcase_to_underscores
from moto.sns import models as sns_models
from moto.sqs.models import Queue
from moto.moto_server.werkzeug_app import (
    DomainDispatcherApplication,
    MotoRequestHandler,
    create_backend_app,
)
from werkzeug.serving import run_simple


def remove_per_request_costs() -> None:
    modules = tuple(backends.list_of_moto_modules())
    backends.list_of_moto_modules = lambda: modules
    jsonpath_ng.ext.parse = functools.lru_cache(maxsize=1024)(jsonpath_ng.ext.parse)
    logging.getLogger("werkzeug").setLevel(logging.WARNING)
    Queue.attributes = property(QueueAttributes)
    sns_models.Subscription.get_post_data = get_post_data


@functools.lru_cache(maxsize=None)
def signing_certificate(subscription):
    """The subscription's signing certificate (made once), stored where SigningCertURL points."""
    from cryptography import x509
    from cryptography.hazmat.primitives import hashes, serialization
    from cryptography.x509.oid import NameOID

    key = subscription.private_key()
    now = sns_models.utcnow()
    certificate = (
        x509.CertificateBuilder()
        .subject_name(x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "sns.amazonaws.com")]))
        .issuer_name(
            x509.Name(
                [
                    x509.NameAttribute(NameOID.COUNTRY_NAME, "US"),
                    x509.NameAttribute(NameOID.ORGANIZATION_NAME, "Amazon"),
                    x509.NameAttribute(NameOID.COMMON_NAME, "Amazon RSA 2048 M01"),
                ]
            )
        )
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now)
        .not_valid_after(now + sns_models.timedelta(days=365))
        .sign(key, hashes.SHA256())
    )
    key_name = f"SimpleNotificationService-{sns_models.mock_random.uuid4().hex}.pem"
    region = subscription.topic.sns_backend.region_name
    default_backend = sns_models.sns_backends[sns_models.DEFAULT_ACCOUNT_ID][region]
    default_backend._message_public_keys[key_name] = certificate.public_bytes(
        serialization.Encoding.PEM
    )
    return f"https://sns.{region}.amazonaws.com/{key_name}"


def get_post_data(self, message, message_id, subject, message_attributes=None):
    """moto 5.2.5's `Subscription.get_post_data`, with the certificate made once per subscription."""
    from cryptography.hazmat.primitives import hashes
    from cryptography.hazmat.primitives.asymmetric import padding

    signing_cert_url = signing_certificate(self)
    timestamp = sns_models.iso_8601_datetime_with_milliseconds()
    string_to_sign = (
        f"Message\n{message}\nMessageId\n{message_id}\nTimestamp\n{timestamp}\n"
        f"TopicArn\n{self.topic.arn}\nType\nNotification\n"
    )
    signature = self.private_key().sign(
        string_to_sign.encode("UTF-8"), padding.PKCS1v15(), hashes.SHA256()
    )
    post_data = {
        "Type": "Notification",
        "MessageId": message_id,
        "TopicArn": self.topic.arn,
        "Message": message,
        "Timestamp": timestamp,
        "SignatureVersion": "2",
        "Signature": base64.b64encode(signature).decode("utf-8"),
        "SigningCertURL": signing_cert_url,
        "UnsubscribeURL": f"https://sns.us-east-1.amazonaws.com/?Action=Unsubscribe&SubscriptionArn=arn:aws:sns:us-east-1:{self.account_id}:{self.topic.name}:2bcfbf39-05c3-41de-beaa-fcfcc21c8f55",
    }
    if subject:
        post_data["Subject"] = subject
    if message_attributes:
        post_data["MessageAttributes"] = message_attributes
    return post_data


class QueueAttributes(Mapping):
    """`Queue.attributes` of moto 5.2.5, the same keys and values, each value computed when read."""

    def __init__(self, queue):
        self._queue = queue
        names = list(Queue.BASE_ATTRIBUTES)
        if queue.fifo_queue:
            names += Queue.FIFO_ATTRIBUTES
        if queue.kms_master_key_id:
            names += Queue.KMS_ATTRIBUTES
        self._names = names

    def __getitem__(self, name):
        if name not in self._names:
            raise KeyError(name)
        queue = self._queue
        if name == "Policy" and queue.policy:
            return queue.policy
        if name == "RedrivePolicy" and queue.redrive_policy:
            return json.dumps(queue.redrive_policy)
        value = getattr(queue, camelcase_to_underscores(name))
        return str(value).lower() if isinstance(value, bool) else value

    def __iter__(self):
        return iter(self._names)

    def __len__(self):
        return len(self._names)


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("-H", "--host", default="127.0.0.1")
    parser.add_argument("-p", "--port", type=int, required=True)
    args = parser.parse_args()
    signal.signal(signal.SIGTERM, lambda *_: sys.exit(0))
    signal.signal(signal.SIGINT, lambda *_: sys.exit(0))
    remove_per_request_costs()
    app = DomainDispatcherApplication(create_backend_app)
    run_simple(args.host, args.port, app, threaded=True, request_handler=MotoRequestHandler)


if __name__ == "__main__":
    main()
