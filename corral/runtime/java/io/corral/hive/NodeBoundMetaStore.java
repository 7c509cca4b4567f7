/*
 * The Hive 2.3 metastore's Thrift server, listening on the node's address only.
 *
 * Why: HiveMetaStore.startMetaStore opens its socket with HiveAuthUtils.getServerSocket(null,
 * port), that is on every address of the host (0.0.0.0:9083), and Hive 2.3 has no setting
 * for a bind host (metastore.thrift.bind.host came with the standalone metastore, Hive 3).
 * The metastore has no authentication here, so Corral keeps it, like every daemon, on the
 * node's address (cluster nodes sit on a trusted network; see the README).
 *
 * This is startMetaStore's unsecured branch (no SASL, no SSL: Corral configures neither)
 * with the same handler, processor, protocols, thread bounds, message size and TCP
 * keep-alive, and one change: the server socket is bound to args[0].
 *
 * Usage: NodeBoundMetaStore ADDRESS PORT
 */
package io.corral.hive;

import java.net.InetSocketAddress;

import org.apache.hadoop.hive.conf.HiveConf;
import org.apache.hadoop.hive.metastore.HiveMetaStore;
import org.apache.hadoop.hive.metastore.IHMSHandler;
import org.apache.hadoop.hive.metastore.TServerSocketKeepAlive;
import org.apache.hadoop.hive.metastore.TSetIpAddressProcessor;
import org.apache.thrift.protocol.TBinaryProtocol;
import org.apache.thrift.server.TServer;
import org.apache.thrift.server.TThreadPoolServer;
import org.apache.thrift.transport.TServerSocket;
import org.apache.thrift.transport.TTransportFactory;

public final class NodeBoundMetaStore {
  private NodeBoundMetaStore() {
  }

  public static void main(String[] args) throws Throwable {
    if (args.length != 2) {
      System.err.println("usage: NodeBoundMetaStore ADDRESS PORT");
      System.exit(2);
    }
    InetSocketAddress address = new InetSocketAddress(args[0], Integer.parseInt(args[1]));
    HiveConf conf = new HiveConf(HiveMetaStore.HMSHandler.class);
    long maxMessageSize = conf.getLongVar(HiveConf.ConfVars.METASTORESERVERMAXMESSAGESIZE);
    HiveMetaStore.HMSHandler base = new HiveMetaStore.HMSHandler("new db based metaserver", conf, false);
    IHMSHandler handler = HiveMetaStore.newRetryingHMSHandler(base, conf);
    TServerSocket socket = new TServerSocket(address);
    if (conf.getBoolVar(HiveConf.ConfVars.METASTORE_TCP_KEEP_ALIVE)) {
      socket = new TServerSocketKeepAlive(socket);
    }
    TThreadPoolServer.Args server = new TThreadPoolServer.Args(socket)
        .processor(new TSetIpAddressProcessor<IHMSHandler>(handler))
        .transportFactory(new TTransportFactory())
        .protocolFactory(new TBinaryProtocol.Factory())
        .inputProtocolFactory(new TBinaryProtocol.Factory(true, true, maxMessageSize, maxMessageSize))
        .minWorkerThreads(conf.getIntVar(HiveConf.ConfVars.METASTORESERVERMINTHREADS))
        .maxWorkerThreads(conf.getIntVar(HiveConf.ConfVars.METASTORESERVERMAXTHREADS));
    TServer tServer = new TThreadPoolServer(server);
    HiveMetaStore.LOG.info("Started the metastore on " + address);
    tServer.serve();
  }
}
