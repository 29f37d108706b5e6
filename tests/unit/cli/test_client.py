"""The command line's HTTP client, without a server: its address check and how it reads a refusal."""

from __future__ import annotations

import io
import json
from email.message import Message

import pytest

from plotjobs.cli import client
from plotjobs.cli.client import Client, ClientError


@pytest.mark.parametrize("server", ["localhost:8000", "ftp://host", "http://", ""])
def test_a_server_that_is_not_an_http_url_is_refused(server: str) -> None:
    with pytest.raises(ClientError, match="http:// or https://"):
        Client(server)


def test_the_server_address_loses_its_trailing_slash() -> None:
    assert Client("https://charts.example/").server == "https://charts.example"


def _http_error(status: int, body: bytes) -> client.urllib.error.HTTPError:
    return client.urllib.error.HTTPError("http://x/api/jobs", status, "Unprocessable", Message(), io.BytesIO(body))


def test_a_refusal_is_read_as_one_line_with_every_detail() -> None:
    body = {"error": "invalid_spec", "message": "width: too big", "details": [{}, {"field": "dpi", "message": "low"}]}
    refusal = client._refusal(_http_error(422, json.dumps(body).encode()))
    assert str(refusal) == "the server refused the request (422): width: too big\n  dpi: low"
    assert str(client._refusal(_http_error(502, b"<html>"))) == "the server answered 502 Unprocessable"


def test_multipart_parts_carry_their_names_and_bytes() -> None:
    body, content_type = client._multipart([("csv", "data.csv", "text/csv", b"a\n1\n")])
    boundary = content_type.split("boundary=")[1]
    assert body.startswith(f"--{boundary}\r\n".encode()) and body.endswith(f"--{boundary}--\r\n".encode())
    assert b'name="csv"; filename="data.csv"' in body and b"\r\n\r\na\n1\n\r\n" in body
