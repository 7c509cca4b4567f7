/*
 * A client-mode Spark driver on YARN attaches its web UI only once the ApplicationMaster's
 * IP filter is installed on the UI's handlers (spark.plugins.defaultList, set by Corral for
 * clusters with YARN).
 *
 * Why: the AM registers with the ResourceManager, then sends the driver AddWebUIFilter; the
 * driver sees the application RUNNING, goes on initialising, and attaches and starts its UI
 * handlers (SparkContext: attachAllHandlers, SPARK-36237) while its RPC thread adds the
 * filter to the same handlers (YarnSchedulerBackend.addWebUIFilter). The lock meant to keep
 * them apart is taken on `ui.getHandlers`, a fresh copy of the handler list on every call
 * since Scala 2.13, so it excludes nothing: when the two overlap, Jetty's
 * ServletHandler.initialize throws ConcurrentModificationException and the SparkContext,
 * hence the step, fails ("Error initializing SparkContext").
 *
 * How: the plugin's driver side, initialised before the scheduler starts, keeps the
 * SparkContext and adds Corral's listener to spark.extraListeners. Listeners are built on the
 * driver's main thread after the application is RUNNING and before the UI is attached
 * (SparkContext.setupAndStartListenerBus); the listener's constructor waits there until every
 * UI handler maps the AM's filter, which the AM sends right after registering. Nothing
 * changes in cluster mode, where the AM sets the filter before the driver starts.
 */
package io.corral.spark;

import java.util.Collections;
import java.util.List;
import java.util.Map;

import org.apache.spark.SparkConf;
import org.apache.spark.SparkContext;
import org.apache.spark.api.plugin.DriverPlugin;
import org.apache.spark.api.plugin.ExecutorPlugin;
import org.apache.spark.api.plugin.PluginContext;
import org.apache.spark.api.plugin.SparkPlugin;
import org.apache.spark.scheduler.SparkListener;
import org.apache.spark.ui.SparkUI;
import org.slf4j.Logger;
import org.slf4j.LoggerFactory;
import org.sparkproject.jetty.ee10.servlet.FilterMapping;
import org.sparkproject.jetty.ee10.servlet.ServletContextHandler;

import scala.jdk.javaapi.CollectionConverters;

public class AmFilterBarrier implements SparkPlugin {
  static final String AM_FILTER = "org.apache.spark.deploy.yarn.AmIpFilter";
  static final String EXTRA_LISTENERS = "spark.extraListeners";
  /** How long the driver waits for the AM's filter (milliseconds); then it goes on, as Spark would. */
  static final String WAIT_MS = "spark.corral.amFilterWait.ms";
  private static final Logger LOG = LoggerFactory.getLogger(AmFilterBarrier.class);
  private static volatile SparkContext context;

  @Override
  public DriverPlugin driverPlugin() {
    return new DriverPlugin() {
      @Override
      public Map<String, String> init(SparkContext sc, PluginContext pluginContext) {
        SparkConf conf = pluginContext.conf();
        if (clientModeOnYarn(conf)) {
          context = sc;
          String listeners = conf.get(EXTRA_LISTENERS, "").trim();
          String ours = Listener.class.getName();
          conf.set(EXTRA_LISTENERS, listeners.isEmpty() ? ours : listeners + "," + ours);
        }
        return Collections.emptyMap();
      }
    };
  }

  @Override
  public ExecutorPlugin executorPlugin() {
    return null;
  }

  static boolean clientModeOnYarn(SparkConf conf) {
    return conf.get("spark.master", "").startsWith("yarn")
        && "client".equals(conf.get("spark.submit.deployMode", "client"))
        && conf.getBoolean("spark.ui.enabled", true);
  }

  /** Whether every handler the UI has maps the AM's filter (its mapping is added last). */
  static boolean filterInstalled(List<ServletContextHandler> handlers) {
    for (ServletContextHandler handler : handlers) {
      FilterMapping[] mappings = handler.getServletHandler().getFilterMappings();
      boolean found = false;
      for (FilterMapping mapping : mappings == null ? new FilterMapping[0] : mappings) {
        found |= AM_FILTER.equals(mapping.getFilterName());
      }
      if (!found) {
        return false;
      }
    }
    return !handlers.isEmpty();
  }

  /** Built by SparkContext (spark.extraListeners) with its configuration; listens to nothing. */
  public static class Listener extends SparkListener {
    public Listener(SparkConf conf) {
      SparkContext sc = context;
      if (sc == null || !clientModeOnYarn(conf) || sc.ui().isEmpty()) {
        return;
      }
      SparkUI ui = sc.ui().get();
      long start = System.nanoTime();
      long waitMs = conf.getLong(WAIT_MS, 60_000L);
      while (!filterInstalled(CollectionConverters.asJava(ui.getHandlers()))) {
        if ((System.nanoTime() - start) / 1_000_000 > waitMs) {
          LOG.warn("The ApplicationMaster's web UI filter did not arrive in {} ms; attaching the UI without it", waitMs);
          return;
        }
        try {
          Thread.sleep(20);
        } catch (InterruptedException e) {
          Thread.currentThread().interrupt();
          return;
        }
      }
      LOG.info("The ApplicationMaster's web UI filter is on the driver's UI handlers ({} ms); attaching them",
          (System.nanoTime() - start) / 1_000_000);
    }
  }
}
