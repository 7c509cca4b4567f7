"""The spec's host selection fields: ``provider``, ``host_labels``, ``hosts``, an optional
instance type on ssh; each refusal names its field."""

from __future__ import annotations

from typing import Any

import pytest
from pydantic import ValidationError

from corral.control.clusters import spec_hash
from corral.domain.spec import ClusterSpec, validate_cluster_spec
from corral.errors import ValidationFailed
from tests.unit.helpers import make_spec, spec_dict


def ssh_dict(*groups: dict[str, Any], **extra: Any) -> dict[str, Any]:
    return spec_dict(provider="ssh", node_groups=list(groups), **extra)


def spec_errors(data: dict[str, Any]) -> list[str]:
    spec = ClusterSpec.model_validate(data)
    with pytest.raises(ValidationFailed) as info:
        validate_cluster_spec(spec)
    return [str(e) for e in info.value.errors]


def shape_errors(data: dict[str, Any]) -> list[tuple[tuple[Any, ...], str]]:
    with pytest.raises(ValidationError) as info:
        ClusterSpec.model_validate(data)
    return [(e["loc"], e["msg"]) for e in info.value.errors()]


def test_local_is_the_default_and_keeps_its_default_instance_type() -> None:
    spec = ClusterSpec.model_validate(spec_dict(node_groups=[{"role": "MASTER"}, {"role": "CORE"}]))
    assert spec.provider == "local"
    assert [g.instance_type for g in spec.node_groups] == ["local.medium", "local.medium"]
    assert [(g.host_labels, g.hosts) for g in spec.node_groups] == [(None, None), (None, None)]


def test_a_local_specs_hash_is_what_it_was_before_host_selection() -> None:
    # Stored with clusters created before these fields existed: a client token must still match.
    assert spec_hash(make_spec(client_token="x")) == "2d7ce9fe2082a8e865065f1f70259f15e9bda7404127b847d2f77f42ab498985"
    assert spec_hash(make_spec(provider="local")) == spec_hash(make_spec())
    assert spec_hash(make_spec(provider="ssh")) != spec_hash(make_spec())


def test_on_ssh_an_instance_type_is_optional() -> None:
    spec = ClusterSpec.model_validate(ssh_dict({"role": "MASTER"}, {"role": "CORE", "instance_type": "local.large"}))
    assert [g.instance_type for g in spec.node_groups] == [None, "local.large"]
    validate_cluster_spec(spec)  # the fit of host-sized groups is checked once their hosts are selected


def test_an_unknown_instance_type_is_refused_on_ssh_too() -> None:
    errors = shape_errors(ssh_dict({"role": "MASTER", "instance_type": "host"}))
    assert [loc for loc, _ in errors] == [("node_groups", 0, "instance_type")]


@pytest.mark.parametrize("field", ["hosts", "host_labels"])
def test_host_fields_are_only_for_ssh(field: str) -> None:
    value: Any = ["h1"] if field == "hosts" else {"rack": "r1"}
    data = spec_dict(node_groups=[{"role": "MASTER", "instance_type": "local.small", field: value},
                                  {"role": "CORE", "count": 2}])
    assert spec_errors(data) == [f"node_groups[0].{field}: only with provider: ssh"]


def test_labels_and_names_select_together() -> None:
    spec = ClusterSpec.model_validate(ssh_dict({"role": "MASTER", "hosts": ["m-1.example"]},
                                               {"role": "CORE", "host_labels": {"rack": "r1", "zone": 3}, "count": 2}))
    validate_cluster_spec(spec)
    assert spec.node_groups[1].host_labels == {"rack": "r1", "zone": "3"}  # YAML's number is the label's text


def test_count_defaults_to_the_named_hosts_and_must_agree_with_them() -> None:
    spec = ClusterSpec.model_validate(ssh_dict({"role": "MASTER", "hosts": ["m"]}, {"role": "CORE", "hosts": ["a", "b", "c"]}))
    assert [g.count for g in spec.node_groups] == [1, 3]
    assert spec_errors(ssh_dict({"role": "MASTER", "hosts": ["m"]}, {"role": "CORE", "count": 2, "hosts": ["a", "b", "c"]})) == [
        "node_groups[1].count: count is 2 but hosts names 3 hosts (one node per host)"]
    assert spec_errors(ssh_dict({"role": "MASTER", "hosts": ["m"]}, {"role": "CORE", "count": 2, "hosts": ["a"]})) == [
        "node_groups[1].count: count is 2 but hosts names 1 host (one node per host)"]


def test_a_host_is_named_once_in_a_spec() -> None:
    data = ssh_dict({"role": "MASTER", "hosts": ["h0"]}, {"role": "CORE", "hosts": ["h1", "h2"]},
                    {"role": "TASK", "hosts": ["h1", "h3", "h3"]})
    assert spec_errors(data) == ["node_groups[2].hosts: h1 is also named by node_groups[1]",
                                 "node_groups[2].hosts: h3 is named twice in this group"]


def test_an_empty_host_list_is_refused() -> None:
    errors = shape_errors(ssh_dict({"role": "MASTER", "hosts": []}))
    assert [loc for loc, _ in errors] == [("node_groups", 0, "hosts")]


@pytest.mark.parametrize(("group", "loc"), [
    ({"role": "MASTER", "hosts": ["bad name"]}, ("node_groups", 0, "hosts", 0)),
    ({"role": "MASTER", "hosts": ["-lead"]}, ("node_groups", 0, "hosts", 0)),
    ({"role": "MASTER", "hosts": ["x" * 129]}, ("node_groups", 0, "hosts", 0)),
    ({"role": "MASTER", "host_labels": {"rack": "r 1"}}, ("node_groups", 0, "host_labels", "rack")),
    ({"role": "MASTER", "host_labels": {"rack": True}}, ("node_groups", 0, "host_labels", "rack")),
    ({"role": "MASTER", "host_labels": {"rack": None}}, ("node_groups", 0, "host_labels", "rack")),
    ({"role": "MASTER", "host_labels": {"r/ack": "r1"}}, ("node_groups", 0, "host_labels", "r/ack", "[key]")),
    ({"role": "MASTER", "host_labels": {"rack": "x" * 64}}, ("node_groups", 0, "host_labels", "rack")),
])
def test_malformed_names_and_labels_are_refused_naming_them(group: dict[str, Any], loc: tuple[Any, ...]) -> None:
    errors = shape_errors(ssh_dict(group))
    assert [e_loc for e_loc, _ in errors] == [loc]


def test_a_malformed_host_name_says_what_a_name_is() -> None:
    ((_, msg),) = shape_errors(ssh_dict({"role": "MASTER", "hosts": ["bad name"]}))
    assert "not a host name: 'bad name'" in msg and "letters, digits" in msg


def test_an_unknown_provider_is_refused() -> None:
    errors = shape_errors(spec_dict(provider="ec2"))
    assert [loc for loc, _ in errors] == [("provider",)]
