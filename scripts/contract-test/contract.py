"""Helpers of scripts/contract-test.sh, run with the schemathesis virtualenv's Python.

  contract.py validate DOC...
      Loads each OpenAPI document with schemathesis's own loader, validates it against the OpenAPI
      meta-schema that schemathesis ships, and draws a few requests for every operation (no network):
      a document that passes can be run. Also checks that every operation requires the security
      scheme with the Cognito scope and documents 401 and 403.

  contract.py unauthenticated DOC BASE_URL
      Sends every operation of DOC once without a token and checks the answer is a 401 the document
      describes (API Gateway's JWT authorizer answers before any function runs).

  contract.py seed-delivery ORDER_DOC COURIER_DOC BASE_URL OUT
      Places an order as the customer (ORDERFLOW_CUSTOMER_TOKEN) with the order document's
      PlaceOrder example, waits until its delivery `d-<order_id>` exists (ORDERFLOW_COURIER_TOKEN),
      and writes COURIER_DOC to OUT with that id as the delivery id's example: the examples and
      stateful phases then start from a real delivery instead of only unknown ones (404). Links
      cannot cross the two documents, so this step is done here. Prints the delivery id; exits 3
      when no delivery appeared in time.
"""

import json
import os
import sys
import time
import urllib.error
import urllib.request

SCOPE = "aws.cognito.signin.user.admin"
METHODS = ("get", "put", "post", "delete", "patch")


def load(path):
    with open(path, encoding="utf-8") as file:
        return json.load(file)


def operations(document):
    for path, item in document["paths"].items():
        for method, operation in item.items():
            if method in METHODS:
                yield method, path, operation


def validate(paths):
    from hypothesis import HealthCheck, given, settings
    from schemathesis import openapi

    problems = []
    for path in paths:
        raw = load(path)
        try:
            schema = openapi.from_path(path)
            # The OpenAPI meta-schema schemathesis ships (checked with jsonschema-rs).
            schema.validate()
            loaded = [result.ok() for result in schema.get_all_operations()]
        except Exception as error:  # the loader's and the validator's errors have no common base
            problems.append(f"{path}: not valid OpenAPI: {str(error)[:2000]}")
            continue
        for method, route, operation in operations(raw):
            requirements = operation.get("security", raw.get("security", []))
            if not requirements or any(SCOPE not in sum(r.values(), []) for r in requirements):
                problems.append(f"{path}: {method.upper()} {route} does not require {SCOPE}")
            for status in ("401", "403"):
                if status not in operation["responses"]:
                    problems.append(f"{path}: {method.upper()} {route} does not document {status}")
        for operation in loaded:
            drawn = []

            @given(operation.as_strategy())
            @settings(max_examples=10, database=None, deadline=None, suppress_health_check=list(HealthCheck))
            def draw(case):
                drawn.append(case)

            draw()
            if not drawn:
                problems.append(f"{path}: no request could be drawn for {operation.label}")
        print(f"{path}: valid OpenAPI {raw['openapi']}, {len(loaded)} operations, requests drawn for each")
    for problem in problems:
        print(f"  {problem}", file=sys.stderr)
    return 1 if problems else 0


def unauthenticated(path, base_url):
    from schemathesis import openapi
    from schemathesis.checks import not_a_server_error
    from schemathesis.specs.openapi.checks import (
        content_type_conformance,
        response_schema_conformance,
        status_code_conformance,
    )

    checks = [not_a_server_error, status_code_conformance, content_type_conformance, response_schema_conformance]
    schema = openapi.from_path(path)
    failures = 0
    for result in schema.get_all_operations():
        operation = result.ok()
        # No body either: the authorizer answers before anything else is read.
        case = operation.Case(path_parameters={p.name: "contract-test-1" for p in operation.path_parameters})
        try:
            response = case.call(base_url=base_url, timeout=10)
        except Exception as error:  # connection refused, timeout: the API is not there
            print(f"  without a token: {operation.label}: request failed: {error}")
            failures += 1
            continue
        outcome = "ok"
        if response.status_code != 401:
            outcome = f"expected 401, got {response.status_code}: {response.text[:200]}"
        else:
            try:
                case.validate_response(response, checks=checks)
            except BaseExceptionGroup as error:  # schemathesis raises its failed checks as a group
                outcome = "401 not as documented: " + "; ".join(str(e).splitlines()[0] for e in error.exceptions)
        if outcome != "ok":
            failures += 1
        print(f"  without a token: {operation.label}: {outcome}")
    return 1 if failures else 0


def request(method, url, token, body=None):
    data = None if body is None else json.dumps(body).encode()
    headers = {"Authorization": f"Bearer {token}"}
    if data is not None:
        headers["Content-Type"] = "application/json"
    req = urllib.request.Request(url, data=data, method=method, headers=headers)
    try:
        with urllib.request.urlopen(req, timeout=10) as response:
            return response.status, json.loads(response.read() or b"null")
    except urllib.error.HTTPError as error:
        return error.code, error.read().decode(errors="replace")
    except (urllib.error.URLError, OSError) as error:  # nothing answers there
        return 0, str(error)


def seed_delivery(order_doc, courier_doc, base_url, out):
    base_url = base_url.rstrip("/")
    order = load(order_doc)
    body = order["components"]["schemas"]["PlaceOrder"]["example"]
    status, placed = request("POST", f"{base_url}/orders", os.environ["ORDERFLOW_CUSTOMER_TOKEN"], body)
    if status != 201:
        print(f"placing the seed order answered {status}: {placed}", file=sys.stderr)
        return 3
    delivery_id = f"d-{placed['order_id']}"
    deadline = time.monotonic() + float(os.environ.get("ORDERFLOW_CONTRACT_SEED_WAIT", "60"))
    while True:
        status, _ = request("GET", f"{base_url}/deliveries/{delivery_id}", os.environ["ORDERFLOW_COURIER_TOKEN"])
        if status == 200:
            break
        if time.monotonic() > deadline:
            print(f"delivery {delivery_id} did not appear (last answer {status})", file=sys.stderr)
            return 3
        time.sleep(0.5)
    courier = load(courier_doc)
    for _, _, operation in operations(courier):
        for parameter in operation.get("parameters", []):
            if parameter.get("in") == "path" and parameter.get("name") == "id":
                parameter["example"] = delivery_id
    with open(out, "w", encoding="utf-8") as file:
        json.dump(courier, file, indent=2)
    print(delivery_id)
    return 0


def main(argv):
    if len(argv) >= 2 and argv[0] == "validate":
        return validate(argv[1:])
    if len(argv) == 3 and argv[0] == "unauthenticated":
        return unauthenticated(argv[1], argv[2])
    if len(argv) == 5 and argv[0] == "seed-delivery":
        return seed_delivery(*argv[1:])
    print(__doc__, file=sys.stderr)
    return 2


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
