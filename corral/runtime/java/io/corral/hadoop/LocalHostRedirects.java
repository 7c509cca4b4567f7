/*
 * A filter for YARN's web proxy (hadoop.http.filter.initializers): redirects it sends to
 * this host's canonical name go to the node's own address (corral.node.address) instead.
 *
 * Why: Hadoop names a daemon bound to a loopback address by the host's canonical name, as
 * if it were bound to every address (WebAppUtils.getResolvedAddress for the ResourceManager,
 * MRWebAppUtil.getApplicationWebURLOnJHSWithoutScheme for the JobHistory Server). On one
 * machine Corral gives every node its own loopback address, so that name ("localhost") is
 * not where those daemons listen. The proxy redirects to such URLs for finished
 * applications (a MapReduce job's history page) and for applications without a tracking URL
 * (the ResourceManager's application page). Every daemon they name runs on the master, the
 * proxy's own node. On real hosts daemons bind their host's address, Hadoop substitutes
 * nothing, and a redirect to the master's own name is equivalent to its address.
 */
package io.corral.hadoop;

import java.io.IOException;
import java.net.InetAddress;
import java.net.URI;
import java.net.URISyntaxException;
import java.net.UnknownHostException;
import java.util.Collections;

import javax.servlet.Filter;
import javax.servlet.FilterChain;
import javax.servlet.FilterConfig;
import javax.servlet.ServletException;
import javax.servlet.ServletRequest;
import javax.servlet.ServletResponse;
import javax.servlet.http.HttpServletResponse;
import javax.servlet.http.HttpServletResponseWrapper;

import org.apache.hadoop.conf.Configuration;
import org.apache.hadoop.http.FilterContainer;
import org.apache.hadoop.http.FilterInitializer;

public class LocalHostRedirects extends FilterInitializer {
  static final String ADDRESS = "address";

  @Override
  public void initFilter(FilterContainer container, Configuration conf) {
    String address = conf.get("corral.node.address");
    if (address != null && !address.isEmpty()) {
      container.addGlobalFilter("corral-local-host-redirects", RedirectFilter.class.getName(),
          Collections.singletonMap(ADDRESS, address));
    }
  }

  /** The host name Hadoop substitutes for a loopback or wildcard address. */
  static String substitutedName() {
    try {
      return InetAddress.getLocalHost().getCanonicalHostName();
    } catch (UnknownHostException e) {
      return null;
    }
  }

  /** {@code location} with the host {@code from} replaced by {@code to}; else unchanged. */
  static String rewrite(String location, String from, String to) {
    if (location == null || from == null) {
      return location;
    }
    try {
      URI uri = new URI(location);
      if (uri.getHost() == null || !uri.getHost().equalsIgnoreCase(from)) {
        return location;
      }
      return new URI(uri.getScheme(), uri.getRawUserInfo(), to, uri.getPort(), uri.getRawPath(),
          uri.getRawQuery(), uri.getRawFragment()).toString();
    } catch (URISyntaxException e) {
      return location;
    }
  }

  public static class RedirectFilter implements Filter {
    private String from;
    private String to;

    @Override
    public void init(FilterConfig config) {
      to = config.getInitParameter(ADDRESS);
      from = substitutedName();
    }

    @Override
    public void doFilter(ServletRequest request, ServletResponse response, FilterChain chain)
        throws IOException, ServletException {
      if (!(response instanceof HttpServletResponse) || from == null || from.equalsIgnoreCase(to)) {
        chain.doFilter(request, response);
        return;
      }
      chain.doFilter(request, new HttpServletResponseWrapper((HttpServletResponse) response) {
        @Override
        public String encodeRedirectURL(String url) {
          return super.encodeRedirectURL(rewrite(url, from, to));
        }

        @Override
        public void sendRedirect(String location) throws IOException {
          super.sendRedirect(rewrite(location, from, to));
        }

        @Override
        public void setHeader(String name, String value) {
          super.setHeader(name, "Location".equalsIgnoreCase(name) ? rewrite(value, from, to) : value);
        }

        @Override
        public void addHeader(String name, String value) {
          super.addHeader(name, "Location".equalsIgnoreCase(name) ? rewrite(value, from, to) : value);
        }
      });
    }

    @Override
    public void destroy() {
    }
  }
}
