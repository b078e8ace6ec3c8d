"""Certificates for the TLS tests, made with the openssl command line in a temporary dir.

- a CA (self-signed);
- a broker certificate for 127.0.0.1 / localhost, its key PKCS#8-encrypted, written as a
  Kafka PEM keystore (key + chain in one file, ``ssl.keystore.type=PEM``);
- a second broker certificate for another host name (the hostname-verification test);
- a client certificate whose key is encrypted with a password (mutual TLS,
  ``ssl.key.password``).
"""

from __future__ import annotations

import os
import secrets
import subprocess
from dataclasses import dataclass


@dataclass
class Certificates:
    dir: str
    ca: str                 # CA certificate (PEM): clients' ssl.ca.location, brokers' truststore
    broker_keystore: str    # PEM keystore for 127.0.0.1 (encrypted key + cert)
    wrong_host_keystore: str  # PEM keystore for wrong-host.invalid
    key_password: str       # the brokers' keystores' key password
    client_cert: str
    client_key: str         # encrypted PEM key
    client_key_password: str


def _openssl(*args: str, cwd: str) -> None:
    result = subprocess.run(["openssl", *args], cwd=cwd, capture_output=True, text=True,
                            stdin=subprocess.DEVNULL, timeout=60)
    if result.returncode != 0:
        raise RuntimeError(f"openssl {' '.join(args)} failed:\n{result.stderr}")


def _leaf(cwd: str, name: str, subject: str, ext: str, password: str,
          java: bool = False) -> tuple[str, str]:
    """A key (PKCS#8, encrypted) and a CA-signed certificate; returns (cert, key) paths.

    ``java``: encrypt the key with PBE-SHA1-3DES, which the JVM's PEM keystore reads (Java 17
    has no PBES2 SecretKeyFactory); otherwise AES-256 (PBES2), which OpenSSL reads."""
    with open(os.path.join(cwd, f"{name}.ext"), "w") as f:
        f.write(ext)
    _openssl("req", "-newkey", "rsa:2048", "-nodes", "-keyout", f"{name}.plain.key",
             "-out", f"{name}.csr", "-subj", subject, cwd=cwd)
    _openssl("x509", "-req", "-in", f"{name}.csr", "-CA", "ca.pem", "-CAkey", "ca.key",
             "-CAcreateserial", "-out", f"{name}.pem", "-days", "3", "-sha256",
             "-extfile", f"{name}.ext", cwd=cwd)
    cipher = ["-v1", "PBE-SHA1-3DES"] if java else ["-v2", "aes-256-cbc", "-v2prf",
                                                    "hmacWithSHA256"]
    _openssl("pkcs8", "-topk8", "-in", f"{name}.plain.key", "-out", f"{name}.key", *cipher,
             "-passout", f"pass:{password}", cwd=cwd)
    os.unlink(os.path.join(cwd, f"{name}.plain.key"))
    return os.path.join(cwd, f"{name}.pem"), os.path.join(cwd, f"{name}.key")


def make_certificates(directory: str) -> Certificates:
    os.makedirs(directory, exist_ok=True)
    _openssl("req", "-x509", "-newkey", "rsa:2048", "-nodes", "-keyout", "ca.key",
             "-out", "ca.pem", "-days", "3", "-sha256", "-subj", "/CN=waterdrop test CA",
             "-addext", "basicConstraints=critical,CA:TRUE",
             "-addext", "keyUsage=critical,keyCertSign,cRLSign", cwd=directory)
    key_password = "broker-key-" + secrets.token_hex(8)
    server_ext = ("basicConstraints=CA:FALSE\nkeyUsage=digitalSignature,keyEncipherment\n"
                  "extendedKeyUsage=serverAuth\nsubjectAltName={}\n")
    keystores = []
    for name, san in (("broker", "IP:127.0.0.1,DNS:localhost"),
                      ("wrong-host", "DNS:wrong-host.invalid")):
        cert, key = _leaf(directory, name, f"/CN={san.split(':', 1)[1].split(',')[0]}",
                          server_ext.format(san), key_password, java=True)
        keystore = os.path.join(directory, f"{name}.keystore.pem")
        with open(keystore, "w") as out:
            for part in (key, cert, os.path.join(directory, "ca.pem")):
                with open(part) as f:
                    out.write(f.read())
        keystores.append(keystore)
    client_password = "client-key-" + secrets.token_hex(8)
    client_cert, client_key = _leaf(
        directory, "client", "/CN=waterdrop-client",
        "basicConstraints=CA:FALSE\nkeyUsage=digitalSignature\nextendedKeyUsage=clientAuth\n",
        client_password)
    return Certificates(
        dir=directory, ca=os.path.join(directory, "ca.pem"), broker_keystore=keystores[0],
        wrong_host_keystore=keystores[1], key_password=key_password, client_cert=client_cert,
        client_key=client_key, client_key_password=client_password,
    )
