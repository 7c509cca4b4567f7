import java.io.BufferedReader;
import java.io.File;
import java.io.FileInputStream;
import java.io.InputStreamReader;
import java.io.PrintStream;
import java.io.Reader;
import java.nio.charset.StandardCharsets;
import java.util.Map;
import java.util.Properties;
import java.util.TreeMap;

/**
 * Reads configuration files the way their consumers do, for tests/unit/test_formats.py.
 *
 * <p>One request per line on stdin, {@code MODE PATH}; the answer is one {@code KEY VALUE}
 * line per property, each as hex UTF-16 code units (4 digits per unit), then {@code END};
 * or {@code ERROR MESSAGE}. Modes:
 * <ul>
 *   <li>{@code properties}: {@code java.util.Properties.load} through a UTF-8 Reader,
 *       as Spark's Utils.getPropertiesFromFile and its launcher read spark-defaults.conf;</li>
 *   <li>{@code spark}: Spark's own {@code Utils.getPropertiesFromFile} (which then trims);</li>
 *   <li>{@code hadoop}: Hadoop's {@code Configuration}, raw values (no ${var} expansion),
 *       from whichever Hadoop is on the class path (the runtime's, or Spark's client).</li>
 * </ul>
 */
public class ReadBack {
  static String hex(String s) {
    StringBuilder out = new StringBuilder(s.length() * 4);
    for (int i = 0; i < s.length(); i++) {
      out.append(String.format("%04x", (int) s.charAt(i)));
    }
    return out.toString();
  }

  static Map<String, String> read(String mode, String path) throws Exception {
    Map<String, String> found = new TreeMap<>();
    switch (mode) {
      case "properties": {
        Properties props = new Properties();
        try (Reader reader = new InputStreamReader(new FileInputStream(path), StandardCharsets.UTF_8)) {
          props.load(reader);
        }
        for (String key : props.stringPropertyNames()) {
          found.put(key, props.getProperty(key));
        }
        return found;
      }
      case "spark":
        found.putAll(scala.jdk.javaapi.CollectionConverters.asJava(
            org.apache.spark.util.Utils.getPropertiesFromFile(path)));
        return found;
      case "hadoop": {
        org.apache.hadoop.conf.Configuration conf = new org.apache.hadoop.conf.Configuration(false);
        conf.addResource(new File(path).toURI().toURL());
        for (Map.Entry<String, String> entry : conf) {
          found.put(entry.getKey(), conf.getRaw(entry.getKey()));
        }
        return found;
      }
      default:
        throw new IllegalArgumentException("unknown mode " + mode);
    }
  }

  public static void main(String[] args) throws Exception {
    PrintStream out = new PrintStream(new java.io.FileOutputStream(java.io.FileDescriptor.out), false, "US-ASCII");
    BufferedReader in = new BufferedReader(new InputStreamReader(System.in, StandardCharsets.UTF_8));
    String line;
    while ((line = in.readLine()) != null) {
      int space = line.indexOf(' ');
      try {
        for (Map.Entry<String, String> entry : read(line.substring(0, space), line.substring(space + 1)).entrySet()) {
          out.println(hex(entry.getKey()) + " " + hex(entry.getValue()));
        }
        out.println("END");
      } catch (Exception e) {
        out.println("ERROR " + hex(String.valueOf(e)));
      }
      out.flush();
    }
  }
}
