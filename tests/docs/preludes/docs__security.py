# docs/security.md: its examples configure producers for brokers that are not there (they are
# never used, only configured) and read secrets from the environment.
import os

from waterdrop import Producer

for name in ("KAFKA_KEY_PASSWORD", "KAFKA_KEYSTORE_PASSWORD", "KAFKA_PASSWORD", "OIDC_CLIENT_SECRET"):
    os.environ.setdefault(name, "not-a-real-secret")
alerts: list[object] = []
alert = alerts.append
