/*
 * Hadoop's default socket factory, except that outgoing sockets are bound to the node's
 * own address (the CORRAL_BIND_ADDRESS environment variable) when that address is one of
 * this host's.
 *
 * Why: on one machine, Corral gives every node its own loopback address (127.x.y.z), but
 * the kernel picks 127.0.0.1 as the source of any connection to another loopback address.
 * The NameNode identifies a DataNode by the source address of its registration RPC, so
 * every DataNode would look like 127.0.0.1:9866 and each would evict the previous one.
 * Bound to its own address, each node is seen exactly as it would be on its own host.
 * On real hosts the kernel already picks the right source, and this changes nothing.
 */
package io.corral.hadoop;

import java.io.IOException;
import java.net.InetAddress;
import java.net.InetSocketAddress;
import java.net.NetworkInterface;
import java.net.Socket;
import java.net.SocketException;

import org.apache.hadoop.net.StandardSocketFactory;

public class NodeAddressSocketFactory extends StandardSocketFactory {
  private static final InetAddress BIND_ADDRESS = localAddress(System.getenv("CORRAL_BIND_ADDRESS"));

  private static InetAddress localAddress(String value) {
    if (value == null || value.isEmpty()) {
      return null;
    }
    try {
      InetAddress address = InetAddress.getByName(value);
      // Only bind to an address this host has; otherwise (e.g. a container that
      // inherited another node's setting) keep the kernel's choice.
      return address.isLoopbackAddress() || NetworkInterface.getByInetAddress(address) != null ? address : null;
    } catch (IOException e) {
      return null;
    }
  }

  @Override
  public Socket createSocket() throws IOException {
    Socket socket = super.createSocket();
    if (BIND_ADDRESS != null) {
      try {
        socket.bind(new InetSocketAddress(BIND_ADDRESS, 0));
      } catch (SocketException e) {
        socket.close();
        socket = super.createSocket();
      }
    }
    return socket;
  }

  @Override
  public boolean equals(Object other) {
    return other instanceof NodeAddressSocketFactory;
  }

  @Override
  public int hashCode() {
    return NodeAddressSocketFactory.class.hashCode();
  }
}
