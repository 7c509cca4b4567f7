"""Exclude files for graceful decommission: the YARN XML with remaining timeouts, HDFS lines."""

from __future__ import annotations

import xml.etree.ElementTree as ET

from corral.services.exclude_files import hdfs_exclude, yarn_exclude_xml


def test_yarn_exclude_holds_each_nodes_remaining_seconds() -> None:
    text = yarn_exclude_xml({"node-b": 1000.2, "node-a": None, "node-c": 400.0}, now=500.0)
    hosts = [(h.findtext("name"), h.findtext("timeout")) for h in ET.fromstring(text.split("\n", 1)[1]).iter("host")]
    assert hosts == [("node-a", "-1"), ("node-b", "501"), ("node-c", "0")]  # no limit, ceil, past: at once
    assert text.startswith('<?xml version="1.0"?>\n<hosts>\n')
    assert yarn_exclude_xml({}, now=0) == '<?xml version="1.0"?>\n<hosts>\n</hosts>\n'
    assert "<name>a&amp;b</name>" in yarn_exclude_xml({"a&b": None}, now=0)


def test_hdfs_exclude_is_one_address_per_line() -> None:
    assert hdfs_exclude(["127.60.0.3", "127.60.0.2", "127.60.0.3"]) == "127.60.0.2\n127.60.0.3\n"
    assert hdfs_exclude([]) == ""
