from __future__ import annotations

import pytest

from wslnet.forward.core.rules import Endpoint, RuleError, parse_rule


@pytest.mark.parametrize(
    ("text", "proto", "listen", "target"),
    [
        (
            "8080=198.18.5.20:8080",
            "tcp",
            Endpoint("", 8080),
            Endpoint("198.18.5.20", 8080),
        ),
        (
            "0.0.0.0:2222=198.18.5.20:22",
            "tcp",
            Endpoint("0.0.0.0", 2222),
            Endpoint("198.18.5.20", 22),
        ),
        ("[::1]:9000=localhost:9000", "tcp", Endpoint("::1", 9000), Endpoint("localhost", 9000)),
        ("8080", "tcp", Endpoint("", 8080), Endpoint("wsl", 8080)),
        ("localhost:5173=wsl:5173", "tcp", Endpoint("", 5173), Endpoint("wsl", 5173)),
        ("8080=3000", "tcp", Endpoint("", 8080), Endpoint("wsl", 3000)),
        ("udp/127.0.0.1:53=host:53", "udp", Endpoint("127.0.0.1", 53), Endpoint("host", 53)),
        ("tcp/8080=[::1]:80", "tcp", Endpoint("", 8080), Endpoint("::1", 80)),
        (
            "TCP/0=example.internal:443",
            "tcp",
            Endpoint("", 0),
            Endpoint("example.internal", 443),
        ),
        (
            "udp/5353=198.18.5.20:53",
            "udp",
            Endpoint("", 5353),
            Endpoint("198.18.5.20", 53),
        ),
        (
            "8080=wsl@Ubuntu-22.04:8080",
            "tcp",
            Endpoint("", 8080),
            Endpoint("wsl@Ubuntu-22.04", 8080),
        ),
    ],
)
def test_valid_rules_parse(text: str, proto: str, listen: Endpoint, target: Endpoint) -> None:
    rule = parse_rule(text)
    assert (rule.proto, rule.listen, rule.target) == (proto, listen, target)


@pytest.mark.parametrize(
    ("text", "why"),
    [
        ("99999", "listen port 99999 is out of range"),
        ("abc=def", "listen port 'abc' is not a number"),
        ("0", "port 0 needs a target port"),
        ("8080=", "the target is missing"),
        ("=1.2.3.4:80", "the listen port is missing"),
        ("8080=198.18.5.20", "is neither PORT nor HOST:PORT"),
        ("8080=198.18.5.20:0", "target port 0 is out of range"),
        ("8080=198.18.5.20:70000", "target port 70000 is out of range"),
        ("::1:8080=a:1", "put an IPv6 address in brackets"),
        ("[::1:8080=a:1", "without ']'"),
        ("[1.2.3.4]:80=a:1", "is not an IPv6 address"),
        ("example.org:80=a:1", "must be an IP address"),
        ("8080:3000", "did you mean 8080=3000?"),
        ("sctp/80=a:1", "unknown protocol 'sctp'"),
        ("80=bad host!:1", "neither an IP address nor a host name"),
        ("", "the rule is empty"),
    ],
)
def test_bad_rules_say_what_is_wrong_and_show_the_form(text: str, why: str) -> None:
    with pytest.raises(RuleError) as info:
        parse_rule(text)
    assert why in str(info.value)
    assert "expected [tcp/|udp/][HOST:]PORT[=[HOST:]PORT]" in str(info.value)


def test_the_docker_habit_gets_the_exact_hint() -> None:
    with pytest.raises(RuleError) as info:
        parse_rule("8080:3000")
    assert info.value.message.startswith("bad rule '8080:3000': did you mean 8080=3000?;")
    assert info.value.part == "rule"
    assert info.value.exit_code == 2
