"""Everything the control plane's service functions need, built once per process."""

from __future__ import annotations

from dataclasses import dataclass, field

from corral import secretbox
from corral.control.files import ArtifactStore, LogStore
from corral.control.heartbeats import Heartbeats
from corral.control.node_metrics import NodeMetricsBoard
from corral.control.notifier import Notifier
from corral.control.plan_versions import PlanVersions
from corral.control.repository import Repository
from corral.control.telemetry import Telemetry
from corral.metrics.history import HistoryStore, Retention
from corral.providers.base import NodeProvider
from corral.providers.local import LocalProvider
from corral.providers.ssh import SshProvider
from corral.providers.ssh_transport import SshPool
from corral.settings import Settings
from corral.store.db import Store
from corral.store.sealing import seal_plaintext_secrets


@dataclass
class ControlPlane:
    settings: Settings
    store: Store
    providers: dict[str, NodeProvider]
    notifier: Notifier = field(default_factory=Notifier)
    # One pool of SSH connections per process (host checks, the ssh provider); its
    # connections are reused per host and closed at shutdown.
    ssh: SshPool = field(default_factory=SshPool)
    # The newest measurement each agent reported (in memory; the sampler keeps history).
    node_metrics: NodeMetricsBoard = field(default_factory=NodeMetricsBoard)
    # Repeated heartbeats answered from memory, their times written in batches.
    heartbeats: Heartbeats = field(default_factory=Heartbeats)
    # The control plane's own Prometheus metrics (``GET /metrics``): a registry of its own,
    # not the client's process-wide default, as one process may run many control planes.
    telemetry: Telemetry = field(default_factory=Telemetry)

    def __post_init__(self) -> None:
        # The store's secret columns are encrypted with this control plane's key
        # (process-wide: the ORM's column types have no other way to reach it).
        secretbox.configure(self.settings.home, self.settings.secret_key)
        self.logs = LogStore(self.settings.logs_dir)
        self.artifacts = ArtifactStore(self.settings.artifacts_dir)
        self.repository = Repository(self.settings)
        # Every cluster's stored metric history (``corral.reconcile.sampler`` appends).
        self.history = HistoryStore(self.store, Retention.from_env())
        # Every cluster's plan version, one read shared by the long polls' re-checks.
        self.plan_versions = PlanVersions(self.store)

    @classmethod
    def from_settings(cls, settings: Settings) -> "ControlPlane":
        settings.ensure_dirs()
        store = Store(settings.database_url)
        store.migrate()
        pool = SshPool()  # the process's one pool: host checks and the ssh provider share its connections
        providers: dict[str, NodeProvider] = {"local": LocalProvider(settings, store),
                                              "ssh": SshProvider(settings, store, pool)}
        plane = cls(settings=settings, store=store, providers=providers, ssh=pool)
        seal_plaintext_secrets(store)
        return plane

    def provider(self, name: str) -> NodeProvider:
        return self.providers[name]
