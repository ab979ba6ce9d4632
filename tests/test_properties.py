"""Property tests: every parser, the rule grammar, the config file reader and the API's
body handling, fed whatever hypothesis makes. The only exceptions allowed are the
project's own typed errors. `make test` runs a bounded number of examples; `make fuzz`
runs many more (HYPOTHESIS_PROFILE=fuzz)."""

from __future__ import annotations

import os
import string
from pathlib import Path

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from wslnet.errors import UsageError
from wslnet.facts import ipaddr, kernel, procnet, resolv, route, wslconfig
from wslnet.forward.control import configfile
from wslnet.forward.control.requests import forward_request
from wslnet.forward.core.config import parse_ports
from wslnet.forward.core.rules import parse_networks, parse_rule

settings.register_profile("ci", max_examples=150, deadline=None)
settings.register_profile(
    "fuzz", max_examples=20_000, deadline=None, suppress_health_check=list(HealthCheck)
)
settings.load_profile(os.environ.get("HYPOTHESIS_PROFILE", "ci"))

# Text that looks like what these parsers meet, mixed with anything at all.
RULE_ALPHABET = string.digits + ":[]=/.tcpudpwslhost@-_ abcdef٨²\x00"
rule_text = st.one_of(st.text(RULE_ALPHABET, max_size=40), st.text(max_size=40))
lines = st.lists(st.one_of(st.text(string.printable, max_size=80), st.text(max_size=80)))
toml_scalar = st.one_of(st.integers(), st.floats(), st.booleans(), st.text(max_size=20), st.none())
toml_value = st.recursive(
    toml_scalar.filter(lambda v: v is not None),
    lambda inner: st.one_of(
        st.lists(inner, max_size=4), st.dictionaries(st.text(max_size=10), inner, max_size=4)
    ),
    max_leaves=12,
)
rule_table = st.dictionaries(
    st.sampled_from(["listen", "target", "proto", "allow", "port"]), toml_value, max_size=5
)
config_doc = st.dictionaries(
    st.one_of(st.sampled_from([*configfile.SETTINGS, "forward"]), st.text(max_size=8)),
    st.one_of(toml_value, st.lists(rule_table, max_size=3)),
    max_size=5,
)


@given(rule_text)
def test_the_rule_grammar_raises_only_rule_errors(text: str) -> None:
    try:
        rule = parse_rule(text)
    except UsageError:
        return
    assert 0 <= rule.listen.port <= 65535 and 1 <= rule.target.port <= 65535


@given(st.lists(st.one_of(st.text(max_size=20), st.integers(), st.none()), max_size=4))
def test_allow_lists_raise_only_usage_errors(items: list[object]) -> None:
    try:
        parse_networks(items, "--allow")
    except UsageError:
        pass


@given(st.text(string.digits + ",- ٨", max_size=20) | st.text(max_size=20))
def test_port_ranges_raise_only_usage_errors(text: str) -> None:
    try:
        ranges = parse_ports(text, "--include")
    except UsageError:
        return
    assert all(1 <= r.low <= r.high <= 65535 for r in ranges)


@given(config_doc)
def test_config_documents_raise_only_usage_errors(doc: dict[str, object]) -> None:
    try:
        configfile.parse(doc, Path("forward.toml"))
    except UsageError:
        pass


@given(st.binary(max_size=300) | st.text(max_size=300).map(str.encode))
@settings(suppress_health_check=[HealthCheck.function_scoped_fixture])
def test_config_files_of_any_bytes_raise_only_usage_errors(tmp_path: Path, data: bytes) -> None:
    path = tmp_path / "forward.toml"
    path.write_bytes(data)
    try:
        configfile.load(path)
    except UsageError:
        pass


@given(
    st.one_of(st.binary(max_size=200), st.text(max_size=200).map(str.encode)),
    st.sampled_from(["application/json", "text/plain", ""]),
)
def test_api_bodies_raise_only_usage_errors(body: bytes, content_type: str) -> None:
    try:
        forward_request(body, content_type)
    except UsageError:
        pass


@given(st.recursive(toml_scalar, lambda i: st.lists(i) | st.dictionaries(st.text(), i)))
def test_api_json_bodies_raise_only_usage_errors(doc: object) -> None:
    import json

    try:
        body = json.dumps(doc).encode()
    except ValueError:
        return
    try:
        forward_request(body, "application/json")
    except UsageError:
        pass


@given(lines)
def test_fact_parsers_never_raise(text_lines: list[str]) -> None:
    text = "\n".join(text_lines)
    procnet.parse(text, "tcp", "ipv4")
    procnet.parse(text, "udp", "ipv6")
    resolv.parse(text)
    route.parse_proc_route(text)
    route.mirrored_rules(text)
    ipaddr.parse_oneline(text)
    wslconfig.parse(text)
    wslconfig.parse(text, "wslconf")
    kernel.classify(text)


# Text from outside, as hostile as hypothesis can make it: process names, host names, paths.
outside_text = st.text(max_size=40) | st.text(
    string.printable + "\u2028\x85\u202e`|<>![]()", max_size=40
)


# Markdown trims a line's edges (and an empty detail is left out): names with text at both.
trimmed = outside_text.filter(lambda t: bool(t) and t.strip() == t)


@given(st.lists(trimmed, min_size=1, max_size=4), trimmed)
def test_a_report_of_any_names_parses_back_to_the_same_structure(
    names: list[str], value: str
) -> None:
    from tests.test_report import ENV, parse, plain
    from wslnet.check.model import ok
    from wslnet.check.report import markdown_report
    from wslnet.escape import control

    def shape(report: str) -> list[str]:
        return [t.type for t in parse(report) if t.type != "text"]

    def report(texts: list[str], v: str) -> str:
        findings = [ok(f"{t} listens", detail=t, evidence={"name": t}) for t in texts]
        return markdown_report(ENV, findings, {"wslnet": "0.1.0"}, {"wsl2.k": v})

    got = report(names, value)
    assert shape(got) == shape(report(["x"] * len(names), "x"))
    inlines = [plain(t) for t in parse(got) if t.type == "inline"][-2 * len(names) :]
    assert inlines[1::2] == [control(n) for n in names]  # each title, then its detail


@given(outside_text, outside_text, st.sampled_from(["text", "json"]))
def test_a_log_line_is_always_one_line(path: str, msg: str, fmt: str) -> None:
    import io

    from wslnet.forward.core.log import EventLog

    out = io.StringIO()
    log = EventLog("json" if fmt == "json" else "text", 0, stream=out)
    log("warning", "api-error", msg, path=path, host=path)
    log.close()
    (line,) = out.getvalue().split("\n")[:-1]
    assert not any(c in line for c in "\r\x0b\x0c\x1c\x1d\x1e\x85\u2028\u2029\x1b")
