"""Everything the control plane's service functions need, built once per process."""

from __future__ import annotations

from dataclasses import dataclass, field

from corral.control.files import ArtifactStore, LogStore
from corral.control.notifier import Notifier
from corral.control.repository import Repository
from corral.providers.base import NodeProvider
from corral.providers.local import LocalProvider
from corral.settings import Settings
from corral.store.db import Store


@dataclass
class ControlPlane:
    settings: Settings
    store: Store
    providers: dict[str, NodeProvider]
    notifier: Notifier = field(default_factory=Notifier)

    def __post_init__(self) -> None:
        self.logs = LogStore(self.settings.logs_dir)
        self.artifacts = ArtifactStore(self.settings.artifacts_dir)
        self.repository = Repository(self.settings)

    @classmethod
    def from_settings(cls, settings: Settings) -> "ControlPlane":
        settings.ensure_dirs()
        store = Store(settings.database_url)
        store.migrate()
        return cls(settings=settings, store=store, providers={"local": LocalProvider(settings, store)})

    def provider(self, name: str) -> NodeProvider:
        return self.providers[name]
