"""What the local provider's agents (and so daemons and steps) inherit of the control plane's environment."""

from __future__ import annotations

from corral.providers.local import agent_environment


def test_agents_get_no_control_plane_secret_or_setting() -> None:
    environ = {"PATH": "/usr/bin", "JAVA_HOME": "/opt/java", "CORRAL_SECRET_KEY": "k", "CORRAL_TOKEN": "crl_t",
               "CORRAL_AUTH": "required", "CORRAL_DATABASE_URL": "postgresql://u:pw@h/db", "CORRAL_HOME": "/h",
               "CORRAL_HOST": "0.0.0.0", "CORRAL_PORT": "7420", "CORRAL_URL": "http://x"}
    assert agent_environment(environ) == {"PATH": "/usr/bin", "JAVA_HOME": "/opt/java"}
