"""Following the links a cluster's daemons hand out, as a browser would: HTTP redirects and
HTML meta refreshes (a NodeManager sends a finished container's log page on to the log
server that way), each hop required to stay on the cluster's own node addresses."""

from __future__ import annotations

import html
import re
import time
from dataclasses import dataclass, field
from urllib.parse import urljoin, urlsplit

import httpx

_META_REFRESH = re.compile(r"""<meta\s+http-equiv=["']?refresh["']?\s+content=["']?\s*\d+\s*;\s*url=([^"'>\s]+)""", re.I)
_HREF = re.compile(r"""href=["'](https?://[^"'#]+)""", re.I)
# What YARN's and the JobHistory Server's pages say, with status 200, when a link leads
# nowhere useful (ContainerLogsPage, AggregatedLogsBlock; the last one until a finished
# container's logs are aggregated, hence the retries).
_DEAD_ENDS = ("Failed redirect for", "Log Server url may not be configured", "Failed while trying to construct",
              "Logs not available for")


# Links Hadoop builds inside a daemon from the host's canonical name when the daemon is
# bound to a loopback address (WebAppUtils.getResolvedAddress, MRWebAppUtil): on the local
# provider that is "localhost", where none of a cluster's daemons listens, and no setting
# changes it. The ResourceManager's application page names its own queue and user pages
# that way (AppBlock's schedulerPath). On hosts, daemons bind the host's address and Hadoop
# substitutes nothing.
HADOOP_NAMES_THE_HOST = ("/cluster/scheduler?openQueues=",)


@dataclass
class LinkCheck:
    """Every link seen and what each came to; ``failures`` say why a link is dead."""

    addresses: set[str]  # the cluster's node addresses: the only hosts a hop may go to
    client: httpx.Client = field(default_factory=lambda: httpx.Client(timeout=15, follow_redirects=False))
    checked: dict[str, str] = field(default_factory=dict)  # url -> final url (or the failure)
    failures: list[str] = field(default_factory=list)

    def visit(self, url: str, what: str, retry_for: float = 0.0) -> str | None:
        """The final page's text once ``url`` answers 200 on the cluster's addresses, else
        None with a failure recorded; ``retry_for`` seconds for pages that fill in later
        (aggregated logs)."""
        deadline = time.monotonic() + retry_for
        while True:
            text, problem = self._follow(url)
            if problem is None or time.monotonic() > deadline:
                break
            time.sleep(2)
        self.checked[url] = problem or "ok"
        print(f"{'ok' if problem is None else 'DEAD'}: {what}: {url}" + (f": {problem}" if problem else ""))
        if problem is not None:
            self.failures.append(f"{what}: {url}: {problem}")
            return None
        return text

    def _follow(self, url: str) -> tuple[str, str | None]:
        hops = [url]
        for _ in range(10):
            host = urlsplit(url).hostname
            if host not in self.addresses:
                return "", f"leads to {host!r}, not a node of the cluster (via {' -> '.join(hops)})"
            try:
                resp = self.client.get(url)
            except httpx.HTTPError as exc:
                return "", f"{exc!r} (via {' -> '.join(hops)})"
            refresh = _META_REFRESH.search(resp.text) if resp.status_code == 200 else None
            if resp.is_redirect or refresh:
                target = resp.headers["location"] if resp.is_redirect else html.unescape(refresh.group(1))  # type: ignore[union-attr]
                url = urljoin(url, target)
                hops.append(url)
                continue
            if resp.status_code != 200:
                return "", f"HTTP {resp.status_code} (via {' -> '.join(hops)})"
            dead = next((d for d in _DEAD_ENDS if d in resp.text), None)
            if dead:
                return "", f"answers {dead!r} (via {' -> '.join(hops)})"
            return resp.text, None
        return "", f"more than 10 redirects: {' -> '.join(hops)}"

    def visit_page_links(self, url: str, what: str, unfixable: tuple[str, ...] = (), retry_for: float = 0.0) -> None:
        """``url`` and every absolute link on its page but those containing one of
        ``unfixable`` (see HADOOP_NAMES_THE_HOST); each link retried for ``retry_for`` s (a
        finished application's page links the log server, which has its logs only once the
        NodeManagers aggregated them)."""
        text = self.visit(url, what)
        for link in sorted(set(_HREF.findall(text or ""))):
            link = html.unescape(link)
            if link not in self.checked and not any(u in link for u in unfixable):
                self.visit(link, f"a link on {what}", retry_for)

    def close(self) -> None:
        self.client.close()


def urls_in(text: str) -> list[str]:
    """The http URLs in a command's output (``yarn application -status``)."""
    return re.findall(r"https?://[^\s'\"<>]+", text)
