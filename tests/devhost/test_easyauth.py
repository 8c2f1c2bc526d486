"""Easy Auth as DevHost plays it: forged headers stripped, the dev sign-in, /.auth/me."""

from __future__ import annotations

import base64
import json
import uuid
from collections.abc import Iterator
from http.cookiejar import CookieJar, DefaultCookiePolicy
from http.cookies import SimpleCookie
from typing import Any

import httpx
import pytest

from devhost import DevHost
from devhost.settings import ConfigError
from tests.devhost.conftest import HTTP_APP

OBJECT_ID = "http://schemas.microsoft.com/identity/claims/objectidentifier"
COOKIE = "AppServiceAuthSession"
LOGIN, LOGOUT, ME = "/.auth/login/dev", "/.auth/logout", "/.auth/me"
USER_ID = "8a7c9e0e-2b52-4d8c-9f4e-0f4f0d3c2b1a"
NO_KEYS = {"LOCAL_FUNCTION_KEY": "", "LOCAL_MASTER_KEY": ""}
FUNCTION_KEY = "function-key-for-easy-auth-tests"
ADMIN_CLAIMS = b'{"claims":[{"typ":"roles","val":"Admin"}]}'
FORGED = {
    "X-MS-CLIENT-PRINCIPAL": base64.b64encode(ADMIN_CLAIMS).decode(),
    "X-MS-CLIENT-PRINCIPAL-ID": "00000000-0000-0000-0000-00000000beef",
    "x-Ms-Client-Principal-Name": "mallory",
    "X-MS-CLIENT-PRINCIPAL-IDP": "aad",
}


@pytest.fixture(scope="module")
def host(keyless_http_host: DevHost) -> DevHost:
    return keyless_http_host


@pytest.fixture(scope="module")
def client() -> Iterator[httpx.Client]:
    """A client that keeps no cookies: each test sends the one it means to."""
    refuse_all = CookieJar(DefaultCookiePolicy(allowed_domains=[]))
    with httpx.Client(timeout=10, cookies=refuse_all) as http:
        yield http


def sign_in(client: httpx.Client, host: DevHost, **fields: Any) -> httpx.Response:
    form = {"user_id": USER_ID, "name": "Ada Teacher", "roles": ["Teacher"]} | fields
    return client.post(f"{host.base_url}{LOGIN}", data=form)


def session_cookie(response: httpx.Response) -> str:
    """The AppServiceAuthSession value a response set."""
    jar: SimpleCookie = SimpleCookie(response.headers["set-cookie"])
    return jar[COOKIE].value


def with_cookie(value: str, **headers: str) -> dict[str, str]:
    return {"Cookie": f"{COOKIE}={value}", **headers}


def whoami(client: httpx.Client, host: DevHost, headers: dict[str, str]) -> dict[str, str]:
    response = client.get(host.url("whoami"), headers=headers)
    assert response.status_code == 200
    seen: dict[str, str] = response.json()
    return seen


def decoded(principal_header: str) -> dict[str, Any]:
    document: dict[str, Any] = json.loads(base64.b64decode(principal_header))
    return document


# -- forged headers -------------------------------------------------------------


def test_client_sent_principal_headers_never_reach_the_function(
    host: DevHost, client: httpx.Client
) -> None:
    headers = FORGED | {"X-MS-CLIENT-PRINCIPAL-EXTRA": "also gone", "X-Custom": "kept"}
    seen = client.get(host.url("echo/x"), headers=headers).json()["headers"]
    assert seen["x-custom"] == "kept"  # other headers still arrive
    assert [name for name in seen if name.startswith("x-ms-client-principal")] == []


# -- the sign-in page -----------------------------------------------------------


def test_sign_in_page_is_a_small_accessible_form(host: DevHost, client: httpx.Client) -> None:
    response = client.get(f"{host.base_url}{LOGIN}", params={"post_login_redirect_uri": "/a?b=1&c"})
    assert response.status_code == 200
    assert response.headers["content-type"] == "text/html; charset=utf-8"
    page = response.text
    assert '<html lang="en">' in page
    assert '<meta name="viewport" content="width=device-width, initial-scale=1">' in page
    assert "<main>" in page
    assert "</main>" in page
    assert '<label for="user_id">' in page
    assert '<label for="name">' in page
    assert "<legend>Roles</legend>" in page
    for role in ("Student", "Teacher", "Admin", "Service"):
        box = f'<input type="checkbox" id="role-{role.lower()}" name="roles" value="{role}">'
        assert box in page
        assert f'<label for="role-{role.lower()}">{role}</label>' in page
    # no external assets: nothing is loaded from anywhere, not even this host
    assert "http://" not in page
    assert "https://" not in page
    assert "<script" not in page
    assert 'value="/a?b=1&amp;c"' in page  # the redirect is carried through the form
    prefilled = page.split('id="user_id" name="user_id" value="', 1)[1].split('"', 1)[0]
    assert str(uuid.UUID(prefilled)) == prefilled  # a fresh random id is offered


def test_new_random_id_keeps_what_was_entered(host: DevHost, client: httpx.Client) -> None:
    query = {"user_id": USER_ID, "name": "Ada", "roles": ["Admin", "Service"], "new_id": "1"}
    page = client.get(f"{host.base_url}{LOGIN}", params=query).text
    assert USER_ID not in page
    assert 'value="Ada"' in page
    assert 'value="Admin" checked>' in page
    assert 'value="Service" checked>' in page
    assert 'value="Student">' in page  # not ticked
    kept = client.get(f"{host.base_url}{LOGIN}", params={"user_id": USER_ID}).text
    assert f'value="{USER_ID}"' in kept  # without new_id the id entered stays


def test_signing_in_sets_a_signed_http_only_cookie(host: DevHost, client: httpx.Client) -> None:
    response = sign_in(client, host)
    assert response.status_code == 303
    assert response.headers["location"] == "/"
    cookie = SimpleCookie(response.headers["set-cookie"])[COOKIE]
    assert cookie["httponly"] is True
    assert cookie["samesite"] == "Lax"
    assert cookie["path"] == "/"
    assert cookie.value.count(".") == 1  # payload.signature


def test_the_cookie_makes_the_host_set_the_principal(host: DevHost, client: httpx.Client) -> None:
    # an upper-case id is stored as Entra ID writes object ids: lower case
    roles = ["Teacher", "Admin"]
    response = sign_in(client, host, user_id=USER_ID.upper(), name="Ada", roles=roles)
    seen = whoami(client, host, with_cookie(session_cookie(response)))
    assert set(seen) == {
        "x-ms-client-principal",
        "x-ms-client-principal-id",
        "x-ms-client-principal-name",
        "x-ms-client-principal-idp",
    }
    assert seen["x-ms-client-principal-id"] == USER_ID
    assert seen["x-ms-client-principal-name"] == "Ada"
    assert seen["x-ms-client-principal-idp"] == "dev"
    principal = decoded(seen["x-ms-client-principal"])
    assert principal["auth_typ"] == "dev"
    assert principal["name_typ"] == "name"
    assert principal["role_typ"] == "roles"
    assert principal["claims"] == [
        {"typ": OBJECT_ID, "val": USER_ID},
        {"typ": "name", "val": "Ada"},
        {"typ": "roles", "val": "Teacher"},
        {"typ": "roles", "val": "Admin"},
    ]


def test_forged_headers_do_not_override_the_cookie(host: DevHost, client: httpx.Client) -> None:
    cookie = session_cookie(sign_in(client, host, roles=["Student"]))
    seen = whoami(client, host, with_cookie(cookie, **FORGED))
    assert seen["x-ms-client-principal-id"] == USER_ID
    assert seen["x-ms-client-principal-name"] == "Ada Teacher"
    assert seen["x-ms-client-principal-idp"] == "dev"
    claims = decoded(seen["x-ms-client-principal"])["claims"]
    assert [c["val"] for c in claims if c["typ"] == "roles"] == ["Student"]


def _reencoded(cookie: str) -> str:
    """The cookie with its payload edited to add the Admin role, its signature kept."""
    payload, signature = cookie.split(".")
    document = json.loads(base64.urlsafe_b64decode(payload + "=" * (-len(payload) % 4)))
    document["roles"] = [*document["roles"], "Admin"]
    edited = base64.urlsafe_b64encode(json.dumps(document).encode()).rstrip(b"=").decode()
    return f"{edited}.{signature}"


@pytest.mark.parametrize(
    "tamper",
    [
        _reencoded,
        lambda cookie: cookie[:-2] + ("AA" if not cookie.endswith("AA") else "BB"),
        lambda cookie: cookie.split(".")[0],  # the signature left off
        lambda cookie: "not-even-base64!.x",
    ],
    ids=["edited-payload", "edited-signature", "unsigned", "garbage"],
)
def test_a_tampered_cookie_is_ignored(host: DevHost, client: httpx.Client, tamper: Any) -> None:
    cookie = session_cookie(sign_in(client, host, roles=["Student"]))
    assert whoami(client, host, with_cookie(cookie))  # the genuine one works
    forged = tamper(cookie)
    assert forged != cookie
    assert whoami(client, host, with_cookie(forged)) == {}
    assert client.get(f"{host.base_url}{ME}", headers=with_cookie(forged)).status_code == 401


def test_auth_me(host: DevHost, client: httpx.Client) -> None:
    assert client.get(f"{host.base_url}{ME}").status_code == 401
    cookie = session_cookie(sign_in(client, host, name="Sam", roles=["Student", "Service"]))
    response = client.get(f"{host.base_url}{ME}", headers=with_cookie(cookie))
    assert response.status_code == 200
    assert response.headers["content-type"].startswith("application/json")
    assert response.json() == [
        {
            "provider_name": "dev",
            "user_id": USER_ID,
            "user_claims": [
                {"typ": OBJECT_ID, "val": USER_ID},
                {"typ": "name", "val": "Sam"},
                {"typ": "roles", "val": "Student"},
                {"typ": "roles", "val": "Service"},
            ],
        }
    ]


def test_sign_in_and_out_in_a_browser_like_session(host: DevHost) -> None:
    with httpx.Client(base_url=host.base_url, timeout=10) as browser:  # keeps cookies
        signed_in = browser.post(
            LOGIN,
            params={"post_login_redirect_uri": "/api/whoami"},
            data={"user_id": USER_ID, "name": "Ada", "roles": "Student"},
        )
        assert signed_in.headers["location"] == "/api/whoami"
        assert browser.get("/api/whoami").json()["x-ms-client-principal-id"] == USER_ID
        assert browser.get(ME).status_code == 200
        assert "Signed in as <strong>Ada</strong>" in browser.get(LOGIN).text
        signed_out = browser.get(LOGOUT)
        assert signed_out.status_code == 302
        assert signed_out.headers["location"] == LOGIN
        cleared = SimpleCookie(signed_out.headers["set-cookie"])[COOKIE]
        assert cleared.value == ""
        assert cleared["max-age"] == "0"
        assert browser.get(ME).status_code == 401
        assert browser.get("/api/whoami").json() == {}
        assert "Signed in as" not in browser.get(LOGIN).text


def test_logout_redirects_to_a_local_path(host: DevHost, client: httpx.Client) -> None:
    url = f"{host.base_url}{LOGOUT}"
    local = client.get(url, params={"post_logout_redirect_uri": "/api/echo/bye?x=1"})
    assert local.headers["location"] == "/api/echo/bye?x=1"
    away = client.get(url, params={"post_logout_redirect_uri": "https://evil.example/"})
    assert away.headers["location"] == LOGIN


@pytest.mark.parametrize(
    "target",
    [
        "https://evil.example/",
        "//evil.example/path",
        "/\\evil.example",
        "/\t/evil.example",
        "javascript:alert(1)",
        "evil.example",
        "",
    ],
)
def test_open_redirects_are_refused(host: DevHost, client: httpx.Client, target: str) -> None:
    response = sign_in(client, host, post_login_redirect_uri=target)
    assert response.status_code == 303
    assert response.headers["location"] == "/"
    logout = client.get(f"{host.base_url}{LOGOUT}", params={"post_logout_redirect_uri": target})
    assert logout.headers["location"] == LOGIN


def test_a_local_redirect_is_followed(host: DevHost, client: httpx.Client) -> None:
    response = sign_in(client, host, post_login_redirect_uri="/app/lessons?tab=2")
    assert response.headers["location"] == "/app/lessons?tab=2"


@pytest.mark.parametrize(
    ("fields", "field", "message"),
    [
        ({"user_id": "not-a-uuid"}, "user_id", "User id: &#x27;not-a-uuid&#x27; is not a UUID."),
        ({"user_id": ""}, "user_id", "User id: &#x27;&#x27; is not a UUID."),
        ({"name": "  "}, "name", "Display name: enter a name."),
        ({"name": "x" * 201}, "name", "Display name: at most 200 printable characters."),
        ({"roles": []}, "roles", "Roles: choose at least one of Student, Teacher, Admin, Service."),
        ({"roles": ["Teacher", "Root"]}, "roles", "Roles: &#x27;Root&#x27; is not one of"),
    ],
)
def test_a_bad_form_is_a_400_naming_the_field(
    host: DevHost, client: httpx.Client, fields: dict[str, Any], field: str, message: str
) -> None:
    response = sign_in(client, host, **fields)
    assert response.status_code == 400
    assert "set-cookie" not in response.headers
    assert f'<p class="error" id="error" role="alert">{message}' in response.text
    if field == "roles":
        assert '<fieldset aria-describedby="error">' in response.text
    else:
        assert f'id="{field}" name="{field}"' in response.text
        tag = response.text.split(f'id="{field}" name="{field}"', 1)[1].split(">", 1)[0]
        assert 'aria-invalid="true"' in tag
    assert response.text.count('aria-invalid="true"') <= 1


def test_other_providers_and_methods(host: DevHost, client: httpx.Client) -> None:
    assert client.get(f"{host.base_url}/.auth/login/aad").status_code == 404
    wrong = client.put(f"{host.base_url}{LOGIN}")
    assert (wrong.status_code, wrong.headers["allow"]) == (405, "GET, POST")
    assert client.post(f"{host.base_url}{ME}").status_code == 405


# -- other configurations ---------------------------------------------------------


def test_sign_in_works_when_keys_are_enforced(client: httpx.Client) -> None:
    keys = {"LOCAL_FUNCTION_KEY": FUNCTION_KEY, "LOCAL_MASTER_KEY": ""}
    with DevHost(HTTP_APP, port=0, environ=keys, queues=False, timers=False) as keyed:
        assert client.get(f"{keyed.base_url}{LOGIN}").status_code == 200
        signed_in = sign_in(client, keyed)
        assert signed_in.status_code == 303
        cookie = with_cookie(session_cookie(signed_in))
        assert client.get(f"{keyed.base_url}{ME}", headers=cookie).status_code == 200
        url = keyed.url(f"users/{USER_ID}")  # a function-level route: still needs its key
        assert client.get(url, headers=cookie).status_code == 401
        keyed_headers = cookie | {"x-functions-key": FUNCTION_KEY}
        seen = client.get(url, headers=keyed_headers).json()["headers"]
        assert seen["x-ms-client-principal-id"] == USER_ID


def test_user_id_claim_setting_and_a_cookie_from_another_host(
    host: DevHost, client: httpx.Client
) -> None:
    environ = NO_KEYS | {"AUTH_USER_ID_CLAIM": "oid"}
    with DevHost(HTTP_APP, port=0, environ=environ, queues=False, timers=False) as other:
        cookie = session_cookie(sign_in(client, other))
        claims = decoded(whoami(client, other, with_cookie(cookie))["x-ms-client-principal"])
        assert claims["claims"][0] == {"typ": "oid", "val": USER_ID}
        # each host signs with its own random key
        from_first_host = session_cookie(sign_in(client, host))
        assert whoami(client, other, with_cookie(from_first_host)) == {}
    assert whoami(client, host, with_cookie(cookie)) == {}


def test_trusting_client_principal_headers(
    client: httpx.Client, caplog: pytest.LogCaptureFixture
) -> None:
    environ = NO_KEYS | {"LOCAL_TRUST_CLIENT_PRINCIPAL": "1"}
    with DevHost(HTTP_APP, port=0, environ=environ, queues=False, timers=False) as trusting:
        warnings = [r for r in caplog.records if r.levelname == "WARNING"]
        assert any("LOCAL_TRUST_CLIENT_PRINCIPAL=1" in r.getMessage() for r in warnings)
        passed = whoami(client, trusting, dict(FORGED))
        assert passed == {name.lower(): value for name, value in FORGED.items()}
        cookie = session_cookie(sign_in(client, trusting))
        # the client's own headers win over the sign-in cookie
        assert whoami(client, trusting, with_cookie(cookie, **FORGED)) == passed
        # and without them, the cookie still signs the caller in
        assert whoami(client, trusting, with_cookie(cookie))["x-ms-client-principal-id"] == USER_ID


def test_no_trust_warning_by_default(caplog: pytest.LogCaptureFixture) -> None:
    with DevHost(HTTP_APP, port=0, environ=NO_KEYS, queues=False, timers=False):
        pass
    assert "LOCAL_TRUST_CLIENT_PRINCIPAL" not in caplog.text


def test_trust_setting_must_be_0_or_1() -> None:
    environ = NO_KEYS | {"LOCAL_TRUST_CLIENT_PRINCIPAL": "true"}
    with (
        pytest.raises(ConfigError, match="LOCAL_TRUST_CLIENT_PRINCIPAL must be 0 or 1"),
        DevHost(HTTP_APP, port=0, environ=environ, queues=False, timers=False),
    ):
        pass
