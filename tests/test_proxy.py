"""The API through nginx configured as deploy/nginx-agents-api.conf, as an exposed box runs it.

nginx is installed from the distribution's packages when it is missing and the suite may do so
(root); where it cannot be, these tests skip with that reason.
"""

import os
import re
import shutil
import signal
import socket
import subprocess
import threading
import time

import pytest
import requests

from tests.conftest import VALID_AGENT
from tests.live_server import ROOT, LiveServer

SITE = ROOT / "deploy" / "nginx-agents-api.conf"
MAIN = """
# The test runs as root and its folders are its own: so are nginx's workers.
user root;
worker_processes 1;
pid {folder}/nginx.pid;
error_log {folder}/error.log warn;
events {{ worker_connections 1024; }}
http {{
    access_log off;
    client_body_temp_path {folder}/body;
    proxy_temp_path {folder}/proxy;
    fastcgi_temp_path {folder}/fastcgi;
    uwsgi_temp_path {folder}/uwsgi;
    scgi_temp_path {folder}/scgi;
    include {folder}/site.conf;
}}
"""


def nginx_command():
    found = shutil.which("nginx") or "/usr/sbin/nginx"
    if os.path.exists(found):
        return found
    if os.geteuid() != 0 or shutil.which("apt-get") is None:
        pytest.skip("nginx is not installed, and installing it needs root and apt-get")
    subprocess.run(
        ["apt-get", "install", "-y", "-q", "nginx-light"],
        env={**os.environ, "DEBIAN_FRONTEND": "noninteractive"},
        capture_output=True,
        check=False,
        timeout=600,
    )
    if not os.path.exists("/usr/sbin/nginx"):
        pytest.skip("nginx could not be installed from the distribution's packages")
    return "/usr/sbin/nginx"


def free_port():
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


@pytest.fixture(scope="module")
def proxied(tmp_path_factory):
    """A live service, and nginx in front of it on another port, as deploy/ configures it."""
    folder = tmp_path_factory.mktemp("nginx")
    command = nginx_command()
    with LiveServer(folder / "agents.db", workers=1) as server:
        upstream = server.url.removeprefix("http://")
        port = free_port()
        site = SITE.read_text()
        site = site.replace("server 127.0.0.1:8000;", f"server {upstream};")
        site = re.sub(r"\n    listen 80;", f"\n    listen 127.0.0.1:{port};", site)
        (folder / "site.conf").write_text(site)
        (folder / "nginx.conf").write_text(MAIN.format(folder=folder))
        errors = open(folder / "stderr.log", "wb")  # noqa: SIM115 - closed with nginx below
        nginx = subprocess.Popen(
            [command, "-c", str(folder / "nginx.conf"), "-g", "daemon off;"],
            stdout=subprocess.DEVNULL,
            stderr=errors,
        )
        url = f"http://127.0.0.1:{port}"
        try:
            deadline = time.monotonic() + 15
            while time.monotonic() < deadline:
                try:
                    if requests.get(f"{url}/healthz", timeout=1).status_code == 200:
                        break
                except requests.RequestException:
                    time.sleep(0.05)
            else:
                pytest.fail(f"nginx did not start: {(folder / 'stderr.log').read_text()}")
            yield url
        finally:
            nginx.send_signal(signal.SIGQUIT)
            nginx.wait(timeout=15)
            errors.close()


def test_the_api_answers_through_the_proxy_unchanged(proxied):
    created = requests.post(f"{proxied}/agents", json=VALID_AGENT, timeout=5)
    assert created.status_code == 201
    agent = created.json()["agent"]
    fetched = requests.get(f"{proxied}/agents/{agent['id']}", timeout=5)
    assert fetched.json() == {"agent": agent}
    assert fetched.headers["ETag"] == created.headers["ETag"]
    refused = requests.post(f"{proxied}/agents", json={}, timeout=5)
    assert refused.status_code == 400
    assert refused.json()["code"] == "validation_error"


def test_a_body_over_the_services_limit_is_refused_by_the_service_in_its_shape(proxied):
    response = requests.post(
        f"{proxied}/agents",
        data=b'{"name": "' + b"a" * 1_500_000 + b'"}',
        headers={"Content-Type": "application/json"},
        timeout=10,
    )
    assert response.status_code == 413
    assert response.json()["code"] == "payload_too_large"


@pytest.mark.parametrize(
    ("raw", "status", "code"),
    [
        (
            b"GET /healthz HTTP/1.1\r\nHost: x\r\nX-Big: " + b"a" * 40_000 + b"\r\n\r\n",
            400,
            "header_fields_too_large",
        ),
        (b"GET /agents?q=" + b"a" * 100_000 + b" HTTP/1.1\r\nHost: x\r\n\r\n", 414, "uri_too_long"),
        (b"NOT HTTP AT ALL\r\n\r\n", 400, "bad_request"),
    ],
)
def test_the_proxys_own_refusals_are_in_the_error_shape(proxied, raw, status, code):
    host, port = proxied.removeprefix("http://").split(":")
    with socket.create_connection((host, int(port)), timeout=5) as sock:
        sock.sendall(raw)
        received = b""
        while chunk := sock.recv(65536):
            received += chunk
    head, _, body = received.partition(b"\r\n\r\n")
    assert head.split(b" ")[1] == str(status).encode(), received
    assert b"application/json" in head
    assert requests.models.complexjson.loads(body)["code"] == code


def test_dripping_and_idle_clients_do_not_keep_others_from_an_answer(proxied):
    host, port = proxied.removeprefix("http://").split(":")
    attackers = []
    for index in range(40):
        sock = socket.create_connection((host, int(port)), timeout=5)
        if index % 2 == 0:
            sock.sendall(b"GET /healthz HTTP/1.1\r\nHost: x\r\n")
        attackers.append(sock)
    stop = threading.Event()

    def drip():
        while not stop.wait(0.5):
            for sock in attackers[::2]:
                try:
                    sock.sendall(b"X")
                except OSError:
                    pass

    dripper = threading.Thread(target=drip, daemon=True)
    dripper.start()
    try:
        answered = sum(
            requests.get(f"{proxied}/healthz", timeout=1).status_code == 200 for _ in range(20)
        )
    finally:
        stop.set()
        dripper.join()
        for sock in attackers:
            sock.close()
    assert answered == 20
