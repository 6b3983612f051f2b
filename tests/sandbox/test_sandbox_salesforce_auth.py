"""The Salesforce emulator's token endpoint and session checks, over real HTTPS."""

from __future__ import annotations

import time
from typing import Any

import jwt
import pytest
import requests
from simple_salesforce import Salesforce, SalesforceExpiredSession

JWT_BEARER = "urn:ietf:params:oauth:grant-type:jwt-bearer"


def _token(sandbox: Any, https: Any, **kwargs: Any) -> requests.Response:
    return https.post(f"{sandbox.salesforce_url}/services/oauth2/token", **kwargs)


def _assertion(creds: dict[str, str], **overrides: Any) -> str:
    claims = {
        "iss": creds["clientId"],
        "sub": creds["username"],
        "aud": "https://login.salesforce.com",
        # simple-salesforce sends exp as a string.
        "exp": str(int(time.time()) + 180),
        **overrides,
    }
    return jwt.encode(claims, "the-sandbox-does-not-check-this-signature-key", algorithm="HS256")


def test_client_credentials_grant_returns_salesforce_token_body(sandbox: Any, https: Any) -> None:
    creds = sandbox.credentials["salesforce"]
    response = _token(
        sandbox,
        https,
        data={"grant_type": "client_credentials"},
        auth=(creds["clientId"], creds["clientSecret"]),
    )
    assert response.status_code == 200
    assert response.headers["Content-Type"] == "application/json"
    assert "Sforce-Limit-Info" not in response.headers
    body = response.json()
    assert set(body) == {
        "access_token", "instance_url", "id", "token_type", "issued_at", "signature", "scope",
    }  # fmt: skip
    assert body["access_token"].startswith("00D")
    assert body["instance_url"] == sandbox.salesforce_url  # no trailing slash
    assert body["token_type"] == "Bearer" and body["issued_at"].isdigit()


def test_grants_accept_form_credentials_jwt_and_password(sandbox: Any, https: Any) -> None:
    creds = sandbox.credentials["salesforce"]
    client = {"client_id": creds["clientId"], "client_secret": creds["clientSecret"]}
    grants = [
        {"grant_type": "client_credentials", **client},
        {"grant_type": JWT_BEARER, "assertion": _assertion(creds)},
        {"grant_type": JWT_BEARER, "assertion": _assertion(creds, exp=int(time.time()) + 60)},
        {
            "grant_type": "password",
            **client,
            "username": creds["username"],
            "password": creds["clientSecret"],
        },
    ]
    for form in grants:
        response = _token(sandbox, https, data=form)
        assert response.status_code == 200, (form["grant_type"], response.text)


@pytest.mark.parametrize(
    ("case", "error", "description"),
    [
        ("unknown client", "invalid_client", "client identifier invalid"),
        ("wrong secret", "invalid_client", "invalid client credentials"),
        ("jwt wrong issuer", "invalid_client", "client identifier invalid"),
        ("jwt wrong subject", "invalid_grant", "authentication failure"),
        ("jwt expired", "invalid_grant", "expired authorization code"),
        ("jwt garbage", "invalid_grant", "invalid assertion"),
        ("password wrong", "invalid_grant", "authentication failure"),
        ("no grant", "unsupported_grant_type", "grant type not supported"),
    ],
)
def test_refused_grants(sandbox: Any, https: Any, case: str, error: str, description: str) -> None:
    creds = sandbox.credentials["salesforce"]
    client = {"client_id": creds["clientId"], "client_secret": creds["clientSecret"]}
    forms = {
        "unknown client": {"grant_type": "client_credentials", **client, "client_id": "nope"},
        "wrong secret": {"grant_type": "client_credentials", **client, "client_secret": "x"},
        "jwt wrong issuer": {"grant_type": JWT_BEARER, "assertion": _assertion(creds, iss="x")},
        "jwt wrong subject": {"grant_type": JWT_BEARER, "assertion": _assertion(creds, sub="x")},
        "jwt expired": {"grant_type": JWT_BEARER, "assertion": _assertion(creds, exp="1000")},
        "jwt garbage": {"grant_type": JWT_BEARER, "assertion": "not.a.jwt"},
        "password wrong": {"grant_type": "password", **client, "username": "u", "password": "p"},
        "no grant": {},
    }
    response = _token(sandbox, https, data=forms[case])
    assert response.status_code == 400
    assert response.json() == {"error": error, "error_description": description}


def test_bad_basic_auth_is_refused(sandbox: Any, https: Any) -> None:
    response = _token(sandbox, https, data={"grant_type": "client_credentials"}, auth=("a", "b"))
    assert response.status_code == 400
    assert response.json()["error"] == "invalid_client"


@pytest.mark.parametrize("header", [None, "Bearer nope", "Basic abc", "Bearer"])
def test_rest_calls_without_a_valid_token_get_the_401_list(
    sandbox: Any, https: Any, header: str | None
) -> None:
    headers = {"Authorization": header} if header else {}
    response = https.get(
        f"{sandbox.salesforce_url}/services/data/v59.0/query/?q=x", headers=headers
    )
    assert response.status_code == 401
    assert response.json() == [
        {"message": "Session expired or invalid", "errorCode": "INVALID_SESSION_ID"}
    ]


def test_oauth_scheme_is_accepted(sandbox: Any, https: Any, get_token: Any) -> None:
    token = get_token()["access_token"]
    response = https.get(
        f"{sandbox.salesforce_url}/services/data/v60.0/query",
        params={"q": "SELECT Id FROM Account"},
        headers={"Authorization": f"OAuth {token}"},
    )
    assert response.status_code == 200
    assert response.json() == {"totalSize": 0, "done": True, "records": []}


def test_simple_salesforce_with_unknown_token_raises_expired_session(
    sandbox: Any, https: Any
) -> None:
    sf = Salesforce(
        instance_url=sandbox.salesforce_url, session_id="00D!bogus", session=https, version="59.0"
    )
    with pytest.raises(SalesforceExpiredSession):
        sf.query("SELECT Id FROM Order")


def test_certificate_is_not_trusted_by_default(sandbox: Any) -> None:
    with pytest.raises(requests.exceptions.SSLError):
        requests.get(f"{sandbox.salesforce_url}/__sandbox/", timeout=5)
    response = requests.get(
        f"{sandbox.salesforce_url}/__sandbox/", verify=sandbox.ca_file, timeout=5
    )
    assert response.json() == {"system": "salesforce", "status": "ok"}
    # Also valid for the name `localhost`, as its SAN says.
    localhost = sandbox.salesforce_url.replace("127.0.0.1", "localhost")
    assert requests.get(f"{localhost}/__sandbox/", verify=sandbox.ca_file, timeout=5).ok
