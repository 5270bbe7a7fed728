"""``GET /.well-known/goticket-keys.json``: the public keys that sign ticket codes, for anyone."""

from __future__ import annotations

from uuid import uuid4

import httpx

from goticket.config import Settings
from goticket.tickets.domain import issue_code, verify_code
from goticket.tickets.keyring import KeyRingFile
from goticket.tickets.signing import public_keys_from_jwks

PATH = "/.well-known/goticket-keys.json"


async def test_anyone_gets_the_keys_that_verify_the_codes_of_the_ring(
    client: httpx.AsyncClient, settings: Settings
) -> None:
    response = await client.get(PATH)
    assert response.status_code == 200
    assert response.headers["content-type"].startswith("application/json")
    assert response.headers["cache-control"] == "public, max-age=300"
    assert response.headers["x-request-id"]
    document = response.json()
    # The app made the ring in its data folder; the published keys are exactly its keys.
    ring = KeyRingFile(settings.data_dir).existing()
    assert ring is not None
    assert [key["kid"] for key in document["keys"]] == [key.kid for key in ring.keys]
    for key in document["keys"]:
        assert set(key) == {"kty", "crv", "kid", "x", "use"}
        assert (key["kty"], key["crv"], key["use"]) == ("OKP", "Ed25519", "sig")
    ticket, event = uuid4(), uuid4()
    code = issue_code(ticket, event, ring.current)
    verified = verify_code(code, dict(public_keys_from_jwks(document)))
    assert (verified.ticket_id, verified.event_id) == (ticket, event)


async def test_the_keys_are_in_the_openapi_document(client: httpx.AsyncClient) -> None:
    document = (await client.get("/openapi.json")).json()
    operation = document["paths"][PATH]["get"]
    assert "tickets" in operation["tags"]
    assert "security" not in operation
    schema = operation["responses"]["200"]["content"]["application/json"]["schema"]
    jwks = document["components"]["schemas"][schema["$ref"].rsplit("/", 1)[-1]]
    jwk = document["components"]["schemas"][
        jwks["properties"]["keys"]["items"]["$ref"].rsplit("/", 1)[-1]
    ]
    assert set(jwk["required"]) == {"kty", "crv", "kid", "x", "use"}
