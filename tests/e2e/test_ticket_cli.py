"""``goticket tickets …`` as real processes: sign, publish, verify offline, rotate."""

from __future__ import annotations

import json
import stat
from datetime import UTC, datetime
from pathlib import Path
from uuid import uuid4

import pytest

from goticket.tickets.keyring import KeyRingFile
from tests.e2e.test_process import environment, run_cli

pytestmark = pytest.mark.slow


def test_sign_then_verify_offline_with_the_published_keys_across_a_rotation(
    tmp_path: Path,
) -> None:
    env = environment(data_dir=str(tmp_path / "data"))

    def cli(*args: str) -> tuple[int, str]:
        done = run_cli("tickets", *args, env=env, cwd=tmp_path, timeout=60)
        return done.returncode, done.stdout.strip()

    ticket, event = str(uuid4()), str(uuid4())
    status, _ = cli("sign", "--ticket", ticket, "--event", event)
    assert status == 2  # no key ring here yet: none is made behind the caller's back
    assert not (tmp_path / "data").exists()
    # The key ring as ``goticket serve`` makes it at its start.
    KeyRingFile(tmp_path / "data").load_or_create(datetime.now(UTC))
    status, code = cli("sign", "--ticket", ticket, "--event", event)
    assert status == 0, code
    assert stat.S_IMODE((tmp_path / "data" / "ticket-keys.json").stat().st_mode) == 0o600
    status, keys = cli("keys")
    assert status == 0
    keys_file = tmp_path / "keys.json"
    keys_file.write_text(keys)

    status, out = cli("verify", code, "--keys", str(keys_file))
    assert status == 0, out
    payload = json.loads(out)
    assert (payload["tid"], payload["eid"]) == (ticket, event)

    # Another ticket's payload under this code's signature.
    _, other = cli("sign", "--ticket", str(uuid4()), "--event", event)
    tampered = ".".join([*other.split(".")[:2], code.split(".")[2]])
    status, out = cli("verify", tampered, "--keys", str(keys_file))
    assert (status, out) == (1, "invalid: the signature does not verify")
    status, out = cli("verify", code + ".x", "--keys", str(keys_file))
    assert status == 1
    assert out.startswith("invalid: ")
    assert "\n" not in out

    status, kid = cli("rotate-key")
    assert status == 0
    assert kid != payload["kid"]
    _, new_code = cli("sign", "--ticket", ticket, "--event", event)
    # The old keys file does not know the new key; the local ring knows both.
    status, out = cli("verify", new_code, "--keys", str(keys_file))
    assert (status, out) == (1, f"invalid: unknown key {kid!r}")
    assert cli("verify", code)[0] == 0
    assert cli("verify", new_code)[0] == 0
    _, keys = cli("keys")
    assert [key["kid"] for key in json.loads(keys)["keys"]] == [payload["kid"], kid]


def test_verify_without_usable_keys_exits_2(tmp_path: Path) -> None:
    env = environment(data_dir=str(tmp_path / "data"))
    missing = run_cli("tickets", "verify", "GT1.a.b", env=env, cwd=tmp_path)
    assert missing.returncode == 2
    assert "no key ring" in missing.stderr
    assert not (tmp_path / "data").exists()  # verifying never creates keys
    (tmp_path / "keys.json").write_text('{"keys": [{"kty": "OKP", "crv": "Ed25519"}]}')
    bad = run_cli(
        "tickets", "verify", "GT1.a.b", "--keys", str(tmp_path / "keys.json"), env=env, cwd=tmp_path
    )
    assert bad.returncode == 2
    assert "no valid kid" in bad.stderr
    (tmp_path / "data").mkdir()
    (tmp_path / "data" / "ticket-keys.json").write_text("{not json")
    for command in (["rotate-key"], ["keys"], ["verify", "GT1.a.b"]):
        broken = run_cli("tickets", *command, env=env, cwd=tmp_path)
        assert broken.returncode == 2, command
        assert broken.stderr.startswith("error: ticket signing keys: unreadable key ring")
    # A ring that cannot be read at all: exit 2 ("no usable keys"), never 1 ("invalid code").
    (tmp_path / "data" / "ticket-keys.json").unlink()
    (tmp_path / "data" / "ticket-keys.json").mkdir()
    unreadable = run_cli("tickets", "verify", "GT1.a.b", env=env, cwd=tmp_path)
    assert unreadable.returncode == 2
    assert unreadable.stderr.startswith("error: ticket signing keys:")


def test_a_configured_key_signs_and_rotation_is_refused(tmp_path: Path) -> None:
    seed = "AAECAwQFBgcICQoLDA0ODxAREhMUFRYXGBkaGxwdHh8"  # bytes 0..31
    env = environment(data_dir=str(tmp_path / "data"), ticket_signing_key=f"ops1:{seed}")
    signed = run_cli("tickets", "sign", "--ticket", str(uuid4()), "--event", str(uuid4()),
                     env=env, cwd=tmp_path)  # fmt: skip
    assert signed.returncode == 0
    verified = run_cli("tickets", "verify", signed.stdout.strip(), env=env, cwd=tmp_path)
    assert verified.returncode == 0
    assert json.loads(verified.stdout)["kid"] == "ops1"
    rotated = run_cli("tickets", "rotate-key", env=env, cwd=tmp_path)
    assert rotated.returncode == 1
    assert "GOTICKET_TICKET_SIGNING_KEY is set" in rotated.stderr
    assert not (tmp_path / "data").exists()


def test_a_new_key_for_the_variable_signs_and_a_bad_variable_stops_every_command(
    tmp_path: Path,
) -> None:
    made = run_cli(
        "tickets", "new-key", env=environment(data_dir=str(tmp_path / "d")), cwd=tmp_path
    )
    assert made.returncode == 0
    pair = made.stdout.strip()
    assert not (tmp_path / "d").exists()
    env = environment(data_dir=str(tmp_path / "d"), ticket_signing_key=pair)
    keys = run_cli("tickets", "keys", env=env, cwd=tmp_path)
    assert json.loads(keys.stdout)["keys"][0]["kid"] == pair.split(":")[0]

    seed = pair.split(":")[1]
    bad = environment(data_dir=str(tmp_path / "d"), ticket_signing_key=f"a b:{seed}")
    for command in (["tickets", "keys"], ["serve", "--port", "1"]):
        refused = run_cli(*command, env=bad, cwd=tmp_path, timeout=60)
        assert refused.returncode == 2, refused.stderr
        assert refused.stderr.startswith("error: ticket signing keys: a key id is not 1..32")
        assert seed not in refused.stderr + refused.stdout
