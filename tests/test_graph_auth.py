"""Sign-in with msal, for real, against a local HTTPS stand-in for the Microsoft identity platform."""

from __future__ import annotations

import datetime
import ipaddress
import ssl
from dataclasses import replace
from http.server import BaseHTTPRequestHandler
from urllib.parse import parse_qs

import pytest
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import NameOID

from loader.config import GraphSettings
from loader.errors import ConfigurationError, GraphError
from loader.graph_auth import acquire_token
from stand_ins.http import LocalHttpStub, send_json

TENANT = "contoso-tenant"
SECRET = "client-secret-value"


def self_signed_certificate(folder):
    key = ec.generate_private_key(ec.SECP256R1())
    name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "127.0.0.1")])
    now = datetime.datetime.now(datetime.UTC)
    certificate = (
        x509.CertificateBuilder()
        .subject_name(name)
        .issuer_name(name)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - datetime.timedelta(minutes=1))
        .not_valid_after(now + datetime.timedelta(hours=1))
        .add_extension(x509.SubjectAlternativeName([x509.IPAddress(ipaddress.ip_address("127.0.0.1"))]), critical=False)
        .add_extension(x509.BasicConstraints(ca=True, path_length=None), critical=True)
        .sign(key, hashes.SHA256())
    )
    cert_path, key_path = folder / "cert.pem", folder / "key.pem"
    cert_path.write_bytes(certificate.public_bytes(serialization.Encoding.PEM))
    key_path.write_bytes(
        key.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption())
    )
    return cert_path, key_path


class IdentityStub(LocalHttpStub):
    def __init__(self, cert_path, key_path):
        self.token_requests: list[dict] = []
        stub = self

        class Handler(BaseHTTPRequestHandler):
            def log_message(self, *args):
                pass

            def do_GET(self):
                if self.path == f"/{TENANT}/v2.0/.well-known/openid-configuration":
                    base = f"{stub.https_url}/{TENANT}"
                    return send_json(
                        self,
                        200,
                        {
                            "issuer": f"{base}/v2.0",
                            "authorization_endpoint": f"{base}/oauth2/v2.0/authorize",
                            "token_endpoint": f"{base}/oauth2/v2.0/token",
                            "device_authorization_endpoint": f"{base}/oauth2/v2.0/devicecode",
                        },
                    )
                return send_json(self, 404, {"error": "not_found"})

            def do_POST(self):
                form = {
                    key: values[0]
                    for key, values in parse_qs(self.rfile.read(int(self.headers["Content-Length"])).decode()).items()
                }
                if self.path.endswith("/devicecode"):
                    return send_json(
                        self,
                        200,
                        {
                            "device_code": "device-123",
                            "user_code": "WXYZ-1234",
                            "expires_in": 900,
                            "interval": 1,
                            "verification_uri": "https://microsoft.com/devicelogin",
                            "message": "To sign in, open https://microsoft.com/devicelogin"
                            " and enter the code WXYZ-1234.",
                        },
                    )
                stub.token_requests.append(form)
                if form.get("grant_type") == "client_credentials" and form.get("client_secret") != SECRET:
                    return send_json(
                        self,
                        401,
                        {
                            "error": "invalid_client",
                            "error_description": "AADSTS7000215: Invalid client secret provided.\r\nTrace ID: 1",
                        },
                    )
                return send_json(
                    self,
                    200,
                    {"access_token": f"token-for-{form.get('grant_type')}", "token_type": "Bearer", "expires_in": 3600},
                )

        self.start_server(Handler)
        context = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
        context.load_cert_chain(cert_path, key_path)
        self.server.socket = context.wrap_socket(self.server.socket, server_side=True)

    @property
    def https_url(self) -> str:
        return self.url.replace("http://", "https://")


@pytest.fixture
def identity(tmp_path, monkeypatch):
    cert_path, key_path = self_signed_certificate(tmp_path)
    monkeypatch.setenv("REQUESTS_CA_BUNDLE", str(cert_path))
    with IdentityStub(cert_path, key_path) as stub:
        yield stub, GraphSettings(authority_host=stub.https_url, tenant_id=TENANT, client_id="app-id")


def test_client_credentials(identity):
    stub, graph = identity
    token = acquire_token(replace(graph, client_secret=SECRET), device_code=False, show=print)
    assert token == "token-for-client_credentials"
    request = stub.token_requests[0]
    assert request["client_id"] == "app-id" and request["scope"] == "https://graph.microsoft.com/.default"


def test_wrong_client_secret_is_one_line_without_the_secret(identity):
    _, graph = identity
    with pytest.raises(GraphError, match="invalid_client: AADSTS7000215") as raised:
        acquire_token(replace(graph, client_secret="wrong-secret"), device_code=False, show=print)
    assert "wrong-secret" not in str(raised.value) and "\n" not in str(raised.value)


def test_device_code_shows_the_message_then_gets_a_token(identity):
    _, graph = identity
    shown = []
    assert (
        acquire_token(graph, device_code=True, show=shown.append)
        == "token-for-urn:ietf:params:oauth:grant-type:device_code"
    )
    assert shown == ["To sign in, open https://microsoft.com/devicelogin and enter the code WXYZ-1234."]


def test_access_token_wins_and_nothing_configured_is_an_error():
    assert acquire_token(GraphSettings(access_token="given"), device_code=False, show=print) == "given"
    with pytest.raises(ConfigurationError, match="ACCESS_TOKEN"):
        acquire_token(GraphSettings(), device_code=False, show=print)
