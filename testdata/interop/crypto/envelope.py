#!/usr/bin/python3
"""Independent re-statement of Omicsomics' per-user envelope encryption,
used to cross-check storage/envelope against Python's `cryptography`.

Written for omics-worker (not copied from backend/app/core/crypto.py):
HKDF-SHA256 (no salt, info = decimal user id, 32 bytes) over MASTER_KEY
(hex if it decodes as hex, else UTF-8), AES-256-GCM with a random 12-byte
nonce, blob = nonce || ciphertext || tag.

Usage (binary data on stdin/stdout):
  envelope.py derive  MASTER USER        -> hex key on stdout
  envelope.py encrypt MASTER USER < pt   -> blob
  envelope.py decrypt MASTER USER < blob -> plaintext (exit 2 on failure)
  envelope.py batch < requests.json      -> responses.json
The batch form (one interpreter for many operations) takes a JSON list of
{"op", "master", "user", "data": hex} and answers a list of
{"ok": true, "data": hex} or {"ok": false, "error": "..."}.
"""
import binascii
import json
import os
import sys

from cryptography.exceptions import InvalidTag
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.ciphers.aead import AESGCM
from cryptography.hazmat.primitives.kdf.hkdf import HKDF


def user_key(master: str, user: int) -> bytes:
    try:
        material = binascii.unhexlify(master)
    except (binascii.Error, TypeError):
        material = master.encode("utf-8")
    kdf = HKDF(algorithm=hashes.SHA256(), length=32, salt=None, info=str(user).encode())
    return kdf.derive(material)


def run(op: str, master: str, user: int, data: bytes) -> bytes:
    key = user_key(master, user)
    if op == "derive":
        return key
    if op == "encrypt":
        nonce = os.urandom(12)
        return nonce + AESGCM(key).encrypt(nonce, data, None)
    if op == "decrypt":
        if len(data) < 13:
            raise ValueError("Encrypted blob too short")
        return AESGCM(key).decrypt(data[:12], data[12:], None)
    raise ValueError("unknown operation " + op)


def batch() -> int:
    out = []
    for req in json.load(sys.stdin):
        try:
            res = run(req["op"], req["master"], int(req["user"]), bytes.fromhex(req.get("data", "")))
            out.append({"ok": True, "data": res.hex()})
        except InvalidTag:
            out.append({"ok": False, "error": "InvalidTag"})
        except ValueError as e:
            out.append({"ok": False, "error": str(e)})
    json.dump(out, sys.stdout)
    return 0


def main() -> int:
    if sys.argv[1] == "batch":
        return batch()
    op, master, user = sys.argv[1], sys.argv[2], int(sys.argv[3])
    key = user_key(master, user)
    if op == "derive":
        print(key.hex())
        return 0
    data = sys.stdin.buffer.read()
    if op == "encrypt":
        nonce = os.urandom(12)
        sys.stdout.buffer.write(nonce + AESGCM(key).encrypt(nonce, data, None))
        return 0
    if op == "decrypt":
        if len(data) < 13:
            print("Encrypted blob too short", file=sys.stderr)
            return 2
        try:
            sys.stdout.buffer.write(AESGCM(key).decrypt(data[:12], data[12:], None))
        except InvalidTag:
            print("InvalidTag", file=sys.stderr)
            return 2
        return 0
    print("unknown operation " + op, file=sys.stderr)
    return 1


if __name__ == "__main__":
    sys.exit(main())
