"""Route templates: matching, constraints, precedence, 404 vs 405."""

from __future__ import annotations

import pytest

from devhost.routes import MethodNotAllowed, RouteError, RouteMatch, Router, RouteTemplate

GUID = "8a7c9e0e-2b52-4d8c-9f4e-0f4f0d3c2b1a"


def params(template: str, path: str) -> dict[str, str] | None:
    parts = [p for p in path.strip("/").split("/") if p] if path.strip("/") else []
    return RouteTemplate.parse(template).match(parts)


@pytest.mark.parametrize(
    ("template", "path", "expected"),
    [
        ("api/v1/users/{user_id}", "api/v1/users/42", {"user_id": "42"}),
        ("api/v1/users/{user_id}", "API/V1/Users/42", {"user_id": "42"}),  # literals ignore case
        ("api/v1/users/{user_id}", "api/v1/users", None),
        ("api/v1/users/{user_id}", "api/v1/users/42/extra", None),
        ("api/v1/users/{user_id:guid}", f"api/v1/users/{GUID}", {"user_id": GUID}),
        ("api/v1/users/{user_id:guid}", "api/v1/users/not-a-guid", None),
        ("items/{id:int}", "items/-12", {"id": "-12"}),
        ("items/{id:int}", "items/12.5", None),
        ("items/{id:int}", "items/99999999999", None),  # beyond 32 bits
        ("items/{id:long}", "items/99999999999", {"id": "99999999999"}),
        ("tags/{tag:alpha}", "tags/Python", {"tag": "Python"}),
        ("tags/{tag:alpha}", "tags/py3", None),
        ("flags/{on:bool}", "flags/True", {"on": "True"}),
        ("n/{n:int:min(1):max(9)}", "n/9", {"n": "9"}),
        ("n/{n:int:min(1):max(9)}", "n/10", None),
        ("n/{n:range(1,3)}", "n/0", None),
        ("codes/{code:length(3)}", "codes/abc", {"code": "abc"}),
        ("codes/{code:minlength(2):maxlength(3)}", "codes/abcd", None),
        ("codes/{code:regex(^\\d{{3}}$)}", "codes/123", {"code": "123"}),
        ("codes/{code:regex(^\\d{{3}}$)}", "codes/1234", None),
        ("prices/{p:double}", "prices/1.5", {"p": "1.5"}),
        # optional and defaulted trailing parameters
        ("items/{id:int}/{tag:alpha?}", "items/3", {"id": "3"}),
        ("items/{id:int}/{tag:alpha?}", "items/3/red", {"id": "3", "tag": "red"}),
        ("items/{id:int}/{tag:alpha?}", "items/3/42", None),
        ("page/{n=1}", "page", {"n": "1"}),
        ("page/{n=1}", "page/5", {"n": "5"}),
        # catch-all takes the rest of the path, and may be empty
        ("files/{*path}", "files/a/b/c.txt", {"path": "a/b/c.txt"}),
        ("files/{*path}", "files", {}),
        # mixed segments
        ("dl/{name}.{ext}", "dl/report.final.pdf", {"name": "report", "ext": "final.pdf"}),
        ("v{version:int}/ping", "v2/ping", {"version": "2"}),
        ("", "", {}),
    ],
)
def test_template_matching(template: str, path: str, expected: dict[str, str] | None) -> None:
    assert params(template, path) == expected


@pytest.mark.parametrize(
    "template",
    [
        "a/{id:nosuchconstraint}",
        "a/{id}/{id}",
        "a/{*rest}/b",
        "a/{opt?}/b",
        "a/{unclosed",
        "a/closed}",
        "a//b",
        "a/{}",
        "a/{n:min(x)}",
        "a/x{opt?}",
    ],
)
def test_templates_the_host_rejects(template: str) -> None:
    with pytest.raises(RouteError):
        RouteTemplate.parse(template)


def test_most_specific_template_wins_whatever_the_order() -> None:
    router: Router[str] = Router()
    router.add("api/users/{*rest}", None, "catch-all")
    router.add("api/users/{name}", None, "parameter")
    router.add("api/users/{id:int}", None, "constrained")
    router.add("api/users/me", None, "literal")
    assert router.resolve("GET", "/api/users/me") == RouteMatch("literal", {})
    assert router.resolve("GET", "/api/users/7") == RouteMatch("constrained", {"id": "7"})
    assert router.resolve("GET", "/api/users/ann") == RouteMatch("parameter", {"name": "ann"})
    assert router.resolve("GET", "/api/users/a/b") == RouteMatch("catch-all", {"rest": "a/b"})


def test_method_filter_gives_405_with_the_allowed_methods() -> None:
    router: Router[str] = Router()
    router.add("api/things/{id}", ["GET"], "read")
    router.add("api/things/{id}", ["put", "DELETE"], "write")
    assert router.resolve("get", "/api/things/1") == RouteMatch("read", {"id": "1"})
    assert router.resolve("DELETE", "/api/things/1") == RouteMatch("write", {"id": "1"})
    assert router.resolve("POST", "/api/things/1") == MethodNotAllowed(
        frozenset({"GET", "PUT", "DELETE"})
    )
    assert router.resolve("POST", "/api/nothing/1") is None


def test_no_methods_means_every_method() -> None:
    router: Router[str] = Router()
    router.add("api/any", None, "any")
    for method in ("GET", "POST", "PATCH", "OPTIONS"):
        assert router.resolve(method, "/api/any/") == RouteMatch("any", {})


def test_paths_are_percent_decoded_per_segment() -> None:
    router: Router[str] = Router()
    router.add("api/names/{name}", None, "names")
    assert router.resolve("GET", "/api/names/J%C3%BCrgen%20M") == RouteMatch(
        "names", {"name": "Jürgen M"}
    )
    # an encoded slash stays inside its segment
    assert router.resolve("GET", "/api/names/a%2Fb") == RouteMatch("names", {"name": "a/b"})
