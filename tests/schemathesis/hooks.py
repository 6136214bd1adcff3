"""Schemathesis hook for the hub: the provisioning payload is signed RS512 like a
partner's, so generated claims reach past authentication (the credentials themselves
come from schemathesis.toml).

The test (`tests/tests/schemathesis.rs`) names the partner's private key file in
HUB_SCHEMATHESIS_PRIVATE_KEY.
"""

import hashlib
import os
import time

import jwt
import schemathesis

with open(os.environ["HUB_SCHEMATHESIS_PRIVATE_KEY"], encoding="utf-8") as f:
    PRIVATE_KEY = f.read()

DOMAINS = "/api/v0/partners/domains"

# The contract's "object to sign" (events/partner-api/provision-domain.claims.json).
CLAIMS = {
    "name": "My Shop",
    "currencyCode": "USD",
    "contactEmail": "hello@releva.ai",
    "timezoneOffset": "+0300",
    "locale": "en",
    "platform": "custom",
}
FUZZED = ["url", "name", "currencyCode", "contactEmail", "timezoneOffset", "locale", "platform"]


@schemathesis.hook
def map_body(ctx, body):
    """The generated `payload` string becomes one claim of a correctly signed payload
    (7 cases in 12), stays a raw string, a malformed JWT (1 in 12), or is replaced by
    the contract's claims for a new shop (4 in 12: these must be provisioned)."""
    if ctx.operation.path != DOMAINS or not isinstance(body, dict):
        return body
    raw = body.get("payload")
    if not isinstance(raw, str):
        return body
    digest = hashlib.sha256(raw.encode("utf-8", "surrogatepass")).digest()
    choice = digest[0] % 12
    if choice == 7:
        return body
    claims = dict(CLAIMS, url=f"st-{digest.hex()[:16]}.example.com")
    if choice < len(FUZZED):
        claims[FUZZED[choice]] = raw
    now = int(time.time())
    claims["iat"] = now
    claims["exp"] = now + 300
    token = jwt.encode(claims, PRIVATE_KEY, algorithm="RS512")
    return dict(body, payload=token)
