package io.tidemark.workers.qga;

import static org.assertj.core.api.Assertions.assertThat;
import static org.assertj.core.api.Assertions.assertThatThrownBy;

import com.fasterxml.jackson.databind.JsonNode;
import com.fasterxml.jackson.databind.ObjectMapper;
import io.tidemark.core.PermanentException;
import io.tidemark.core.RetriableException;
import io.tidemark.core.hypervisor.GuestAgent;
import java.io.BufferedReader;
import java.io.InputStreamReader;
import java.io.OutputStream;
import java.net.StandardProtocolFamily;
import java.net.UnixDomainSocketAddress;
import java.nio.channels.Channels;
import java.nio.channels.ServerSocketChannel;
import java.nio.channels.SocketChannel;
import java.nio.charset.StandardCharsets;
import java.nio.file.Path;
import java.time.Duration;
import java.util.List;
import java.util.concurrent.CopyOnWriteArrayList;
import java.util.function.Function;
import org.junit.jupiter.api.AfterEach;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;

/**
 * The QGA wire protocol against a scripted agent on a Unix socket (qemu-ga's quirks as recipes/qemu.md
 * §7 records them); the real qemu-ga is in TinyGuestConsistencyIT.
 */
class QgaGuestAgentTest {

    private static final ObjectMapper JSON = new ObjectMapper();

    @TempDir
    Path dir;

    private ServerSocketChannel server;
    private Thread serverThread;
    private final List<String> received = new CopyOnWriteArrayList<>();

    @AfterEach
    void tearDown() throws Exception {
        if (server != null) {
            server.close();
            serverThread.join(10_000);
        }
    }

    /** Serves connections one after another; {@code reply} maps a command to the raw reply line (null: silence). */
    private Path serve(Function<JsonNode, String> reply) throws Exception {
        Path sock = dir.resolve("vm1.qga");
        server = ServerSocketChannel.open(StandardProtocolFamily.UNIX);
        server.bind(UnixDomainSocketAddress.of(sock));
        serverThread = new Thread(() -> {
            while (server.isOpen()) {
                try (SocketChannel c = server.accept()) {
                    BufferedReader in = new BufferedReader(
                            new InputStreamReader(Channels.newInputStream(c), StandardCharsets.UTF_8));
                    OutputStream out = Channels.newOutputStream(c);
                    String line;
                    while ((line = in.readLine()) != null) {
                        JsonNode cmd = JSON.readTree(line);
                        received.add(cmd.path("execute").asText());
                        String r = reply.apply(cmd);
                        if (r != null) {
                            out.write(r.getBytes(StandardCharsets.ISO_8859_1));
                            out.flush();
                        }
                    }
                } catch (Exception e) {
                    // the client closed, or the test ends
                }
            }
        });
        serverThread.setDaemon(true);
        serverThread.start();
        return sock;
    }

    /** Like qemu-ga 7.2: 0xFF before the sync reply, and a stale reply from an earlier client first. */
    private static String qemuGa(JsonNode cmd) {
        return switch (cmd.path("execute").asText()) {
            case "guest-sync-delimited" ->
                "{\"return\": 1}\n\u00ff{\"return\": "
                        + cmd.path("arguments").path("id").asLong() + "}\n";
            case "guest-ping" -> "{\"return\": {}}\n";
            case "guest-fsfreeze-status" -> "{\"return\": \"frozen\"}\n";
            case "guest-fsfreeze-freeze" -> "{\"return\": 2}\n";
            case "guest-fsfreeze-thaw" -> "{\"error\": {\"class\": \"GenericError\", \"desc\": \"thaw broke\"}}\n";
            default -> null;
        };
    }

    @Test
    void resynchronisesAndParsesRepliesSendingNo0xFf() throws Exception {
        QgaGuestAgent agent = new QgaGuestAgent("vm1", serve(QgaGuestAgentTest::qemuGa));
        agent.ping(Duration.ofSeconds(10));
        assertThat(agent.status(Duration.ofSeconds(10))).isEqualTo(GuestAgent.FreezeStatus.FROZEN);
        assertThat(agent.freeze(Duration.ofSeconds(10))).isEqualTo(2);
        assertThat(received)
                .containsExactly(
                        "guest-sync-delimited",
                        "guest-ping",
                        "guest-sync-delimited",
                        "guest-fsfreeze-status",
                        "guest-sync-delimited",
                        "guest-fsfreeze-freeze");
    }

    @Test
    void anErrorReplyIsPermanentAndNamesTheVmAndTheSocket() throws Exception {
        Path sock = serve(QgaGuestAgentTest::qemuGa);
        QgaGuestAgent agent = new QgaGuestAgent("vm1", sock);
        assertThatThrownBy(() -> agent.thaw(Duration.ofSeconds(10)))
                .isInstanceOf(PermanentException.class)
                .hasMessageContaining("VM 'vm1'")
                .hasMessageContaining(sock.toString())
                .hasMessageContaining("thaw broke");
    }

    @Test
    void aSilentAgentIsRetriableAfterTheDeadline() throws Exception {
        QgaGuestAgent agent = new QgaGuestAgent("vm1", serve(cmd -> null));
        long start = System.nanoTime();
        assertThatThrownBy(() -> agent.ping(Duration.ofMillis(300)))
                .isInstanceOf(RetriableException.class)
                .hasMessageContaining("did not answer guest-ping within PT0.3S");
        assertThat(Duration.ofNanos(System.nanoTime() - start)).isLessThan(Duration.ofSeconds(30));
    }

    @Test
    void aMissingSocketIsRetriableAndSaysWhatToCheck() {
        Path sock = dir.resolve("none.qga");
        assertThatThrownBy(() -> new QgaGuestAgent("vm9", sock).ping(Duration.ofSeconds(5)))
                .isInstanceOf(RetriableException.class)
                .hasMessageContaining("VM 'vm9'")
                .hasMessageContaining(sock.toString())
                .hasMessageContaining("qemu-guest-agent");
    }
}
