"""Decoded API objects share their keys and short strings (issue 14: the informer caches' memory)."""

from __future__ import annotations

import json

from graylane.kube import jsondecode


def test_two_decodes_share_keys_and_short_values_but_not_long_ones() -> None:
    text = '{"metadata": {"name": "%s", "uid": "%s"}, "spec": {"policy": "IfNotPresent", "n": 3}}'
    a = jsondecode.loads(text % ("a", "u" * 41))  # two separate decodes, as two watch events are
    b = jsondecode.loads((text % ("b", "u" * 41)).encode())
    assert a == {"metadata": {"name": "a", "uid": "u" * 41}, "spec": {"policy": "IfNotPresent", "n": 3}}
    assert next(iter(a["spec"])) is next(iter(b["spec"]))  # one "policy" for every object
    assert a["spec"]["policy"] is b["spec"]["policy"]
    assert a["metadata"]["uid"] is not b["metadata"]["uid"]  # long values are left as they are


def test_it_decodes_what_json_decodes() -> None:
    text = '{"a": [1, 2.5, "x", null, true, {"b": []}], "c": {}, "d": "%s"}' % ("z" * 33)
    assert jsondecode.loads(text) == json.loads(text)
