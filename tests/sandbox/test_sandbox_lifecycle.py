"""Starting, stopping and restarting the sandbox: files, persistence, the command line."""

from __future__ import annotations

import json
import os
import signal
import stat
import subprocess
import sys
from pathlib import Path
from typing import Any

import requests
from cryptography import x509

from sandbox.server import start


def _whmcs(sandbox: Any, action: str, **params: Any) -> dict[str, Any]:
    form = {"action": action, **sandbox.credentials["whmcs"], **params}
    return requests.post(f"{sandbox.whmcs_url}/includes/api.php", data=form, timeout=5).json()


def test_sandbox_dir_files(tmp_path: Path) -> None:
    with start(tmp_path) as sandbox:
        assert sandbox.salesforce_url.startswith("https://127.0.0.1:")
        assert sandbox.whmcs_url.startswith("http://127.0.0.1:")
        assert sandbox.ca_file == str(tmp_path / "salesforce-cert.pem")
    names = {p.name for p in tmp_path.iterdir()}
    assert names == {"credentials.json", "salesforce-cert.pem", "salesforce-key.pem", "state.json"}
    creds = json.loads((tmp_path / "credentials.json").read_text())
    assert {k: set(v) for k, v in creds.items()} == {
        "salesforce": {"clientId", "clientSecret", "username"},
        "whmcs": {"identifier", "secret"},
    }
    assert creds["salesforce"]["username"] == "integration@sandbox.example"
    assert creds == sandbox.credentials
    for private in ("credentials.json", "salesforce-key.pem"):
        assert stat.S_IMODE((tmp_path / private).stat().st_mode) == 0o600


def test_certificate_extensions(tmp_path: Path) -> None:
    start(tmp_path, tls_names=["sandbox.internal"]).stop()
    cert = x509.load_pem_x509_certificate((tmp_path / "salesforce-cert.pem").read_bytes())
    san = cert.extensions.get_extension_for_class(x509.SubjectAlternativeName).value
    assert set(san.get_values_for_type(x509.DNSName)) == {"localhost", "sandbox.internal"}
    assert {str(ip) for ip in san.get_values_for_type(x509.IPAddress)} == {"127.0.0.1", "::1"}
    assert cert.extensions.get_extension_for_class(x509.BasicConstraints).value.ca
    usage = cert.extensions.get_extension_for_class(x509.KeyUsage).value
    assert usage.digital_signature and usage.key_cert_sign and usage.key_encipherment
    for kind in (x509.SubjectKeyIdentifier, x509.AuthorityKeyIdentifier, x509.ExtendedKeyUsage):
        cert.extensions.get_extension_for_class(kind)
    assert (cert.not_valid_after_utc - cert.not_valid_before_utc).days >= 3650


def test_restart_keeps_orders_credentials_and_certificate(tmp_path: Path) -> None:
    with start(tmp_path) as first:
        http = requests.Session()
        created = http.post(
            f"{first.salesforce_url}/__sandbox/orders", json={}, verify=first.ca_file, timeout=5
        ).json()
        token = http.post(
            f"{first.salesforce_url}/services/oauth2/token",
            data={"grant_type": "client_credentials"},
            auth=(
                first.credentials["salesforce"]["clientId"],
                first.credentials["salesforce"]["clientSecret"],
            ),
            verify=first.ca_file,
            timeout=5,
        ).json()["access_token"]
        patched = http.patch(
            f"{first.salesforce_url}/services/data/v59.0/sobjects/Order/{created['orderId']}",
            json={"Activation_Status__c": "Activating"},
            headers={"Authorization": f"Bearer {token}"},
            verify=first.ca_file,
            timeout=5,
        )
        assert patched.status_code == 204
        account = http.get(
            f"{first.salesforce_url}/__sandbox/accounts/{created['accountId']}",
            verify=first.ca_file,
            timeout=5,
        ).json()
        added = _whmcs(
            first,
            "AddOrder",
            clientid=account["WHMCS_Client_Id__c"],
            paymentmethod="mailin",
            **{"pid[0]": "2"},
        )
        assert added["result"] == "success"
    certificate = (tmp_path / "salesforce-cert.pem").read_bytes()

    with start(tmp_path) as second:
        assert second.credentials == first.credentials
        assert (tmp_path / "salesforce-cert.pem").read_bytes() == certificate
        shown = requests.get(
            f"{second.salesforce_url}/__sandbox/orders/{created['orderId']}",
            verify=second.ca_file,
            timeout=5,
        ).json()
        assert shown["record"]["Activation_Status__c"] == "Activating"
        assert [w["fields"] for w in shown["writes"]] == [{"Activation_Status__c": "Activating"}]
        orders = _whmcs(second, "GetOrders")
        assert orders["orders"]["order"][0]["id"] == int(added["orderid"])
        # Ids keep counting from where they were.
        again = _whmcs(
            second,
            "AddOrder",
            clientid=account["WHMCS_Client_Id__c"],
            paymentmethod="mailin",
            **{"pid[0]": "2"},
        )
        assert int(again["orderid"]) == int(added["orderid"]) + 1
        second_order = requests.post(
            f"{second.salesforce_url}/__sandbox/orders", json={}, verify=second.ca_file, timeout=5
        ).json()
        assert int(second_order["orderNumber"]) == int(created["orderNumber"]) + 1
        # Tokens do not survive a restart; clients log in again.
        stale = requests.get(
            f"{second.salesforce_url}/services/data/v59.0/sobjects/Order/{created['orderId']}",
            headers={"Authorization": f"Bearer {token}"},
            verify=second.ca_file,
            timeout=5,
        )
        assert stale.status_code == 401


def test_unreadable_state_is_set_aside(tmp_path: Path) -> None:
    (tmp_path / "state.json").write_text("{not json")
    with start(tmp_path) as sandbox:
        assert _whmcs(sandbox, "GetProducts")["totalresults"] == 5
    assert any(p.name.startswith("state.json.unreadable-") for p in tmp_path.iterdir())


def test_command_line_serves_until_sigterm(tmp_path: Path) -> None:
    env = {**os.environ, "SANDBOX_DIR": str(tmp_path)}
    process = subprocess.Popen(
        [sys.executable, "-m", "sandbox", "--salesforce-port", "0", "--whmcs-port", "0"],
        env=env,
        stdout=subprocess.PIPE,
        text=True,
    )
    try:
        assert process.stdout is not None
        line = process.stdout.readline()
        words = line.split()
        salesforce_url, whmcs_url = (
            words[words.index("Salesforce") + 1],
            words[words.index("WHMCS") + 1],
        )
        ca_file = str(tmp_path / "salesforce-cert.pem")
        assert requests.get(f"{salesforce_url}/__sandbox/", verify=ca_file, timeout=5).ok
        assert requests.get(f"{whmcs_url}/__sandbox/", timeout=5).json()["system"] == "whmcs"
        process.send_signal(signal.SIGTERM)
        assert process.wait(timeout=5) == 0
    finally:
        if process.poll() is None:
            process.kill()
            process.wait()
    assert (tmp_path / "state.json").exists()
