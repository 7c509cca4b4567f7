"""The services Corral knows, by name, and checks across them."""

from __future__ import annotations

from corral.domain.spec import ClusterSpec
from corral.errors import FieldError
from corral.services.base import Service
from corral.services.hdfs import HdfsService
from corral.services.hive import HiveService
from corral.services.mapreduce import MapReduceService
from corral.services.spark import SparkService
from corral.services.yarn import YarnService

# In dependency order: plans, readiness checks and start-up follow it.
SERVICES: dict[str, Service] = {s.name: s for s in (HdfsService(), YarnService(), MapReduceService(), SparkService(), HiveService())}


def get_service(name: str) -> Service:
    return SERVICES[name]


def validate_services(spec: ClusterSpec, shape_ok: bool = True) -> list[FieldError]:
    """Service requirements (only once groups and service names are valid: they rely on
    them) and configuration classifications (always): each known, each property one its
    file's format can carry (``corral.formats``), errors at
    ``configurations[i].properties.<name>``."""
    errors: list[FieldError] = []
    known = [name for name in spec.services if name in SERVICES]
    chosen = set(known)
    for i, name in enumerate(spec.services):
        if name not in SERVICES or not shape_ok:
            continue
        service = SERVICES[name]
        for needed in service.requires:
            if needed not in chosen:
                errors.append(FieldError(("services", i), f"{name} requires {needed}"))
        errors.extend(service.validate(spec))
    owned = {c: fmt for s in known for c, fmt in SERVICES[s].classifications.items()}
    for i, conf in enumerate(spec.configurations):
        if conf.classification not in owned:
            known = ", ".join(sorted(owned)) or "none"
            errors.append(
                FieldError(("configurations", i, "classification"),
                           f"unknown classification {conf.classification!r} for services {', '.join(spec.services)} (known: {known})")
            )
            continue
        # Each value must reach its reader as given: refuse what the file's format cannot hold.
        for key, value in conf.properties.items():
            errors += [FieldError(("configurations", i, "properties", key), problem)
                       for problem in owned[conf.classification].problems(key, value)]
    return errors
