"""Prints, as PEM, the private key moto's Cognito signs every token with (it ships in moto's
package). The end-to-end suite signs tokens with it that differ from real ones in one claim only
(expired, another audience, another issuer), to prove the bridge's JWT authorizer refuses each for
that claim alone, not for a bad signature. Test use only: it is moto's public test key."""

import base64
import gzip
import json
import os
import sys

import moto
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import rsa


def number(value: str) -> int:
    return int.from_bytes(base64.urlsafe_b64decode(value + "=" * (-len(value) % 4)), "big")


def main() -> None:
    path = os.path.join(os.path.dirname(moto.__file__), "cognitoidp", "resources", "jwks-private.json.gz")
    with gzip.open(path) as handle:
        jwk = json.load(handle)
    n, e, d = number(jwk["n"]), number(jwk["e"]), number(jwk["d"])
    p, q = rsa.rsa_recover_prime_factors(n, e, d)
    key = rsa.RSAPrivateNumbers(
        p=p, q=q, d=d,
        dmp1=rsa.rsa_crt_dmp1(d, p), dmq1=rsa.rsa_crt_dmq1(d, q), iqmp=rsa.rsa_crt_iqmp(p, q),
        public_numbers=rsa.RSAPublicNumbers(e, n),
    ).private_key()
    sys.stdout.write(key.private_bytes(
        serialization.Encoding.PEM, serialization.PrivateFormat.TraditionalOpenSSL, serialization.NoEncryption()
    ).decode())


if __name__ == "__main__":
    main()
