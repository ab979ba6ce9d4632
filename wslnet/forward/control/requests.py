"""What an API client may send, parsed without I/O: every way a body can be wrong is
one UsageError (HTTP 400), whatever bytes arrive."""

from __future__ import annotations

import json

from wslnet.errors import UsageError
from wslnet.forward.core.rules import Rule, parse_networks, parse_rule

MAX_BODY = 64 * 1024


def forward_request(body: bytes, content_type: str) -> Rule:
    """POST /v1/forwards: a rule in the command-line grammar (text), or JSON:
    {"rule": "8080=3000"} or {"listen": ..., "target": ..., "proto": ..., "allow": [...]}."""
    if len(body) > MAX_BODY:
        raise UsageError("the body is too large for a rule")
    try:
        text = body.decode("utf-8")
    except UnicodeDecodeError:
        raise UsageError("the body is not UTF-8 text") from None
    if content_type != "application/json":
        return parse_rule(text.strip())
    try:
        doc = json.loads(text)
    except RecursionError:
        raise UsageError("the JSON body is nested too deeply") from None
    except ValueError as exc:
        raise UsageError(f"the body is not JSON: {exc}") from None
    if not isinstance(doc, dict):
        raise UsageError("the JSON body must be an object")
    allow = doc.get("allow")
    if allow is not None and not isinstance(allow, list):
        raise UsageError("'allow' must be a list of networks")
    nets = parse_networks(allow, "allow") if allow is not None else None
    if "rule" in doc:
        return _someone_may_connect(parse_rule(_text(doc["rule"], "rule").strip(), nets))
    if "listen" not in doc:
        raise UsageError("give 'rule', or 'listen' (and 'target', 'proto')")
    text = f"{_text(doc.get('proto', 'tcp'), 'proto')}/{_text(doc['listen'], 'listen')}"
    if "target" in doc:
        text += f"={_text(doc['target'], 'target')}"
    return _someone_may_connect(parse_rule(text, nets))


def _someone_may_connect(rule: Rule) -> Rule:
    """A rule beyond loopback with an empty allow list would refuse everyone, as the
    CLI's LAN rule without --allow would expose it to everyone: both are refused."""
    if rule.allow is not None and not rule.allow and not rule.listen.loopback:
        raise UsageError(
            f"rule {rule.text!r} listens on {rule.listen.host} but 'allow' is empty, so "
            "nobody could connect: list the networks that may"
        )
    return rule


def _text(value: object, field: str) -> str:
    if isinstance(value, bool) or not isinstance(value, (str, int)):
        raise UsageError(f"{field!r} must be a string")
    if isinstance(value, int) and not 0 <= value <= 65535:
        raise UsageError(f"{field!r} is out of range")
    return str(value)
