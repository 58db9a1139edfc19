package io.tidemark.workers.qmp;

import static org.assertj.core.api.Assertions.assertThat;
import static org.assertj.core.api.Assertions.assertThatThrownBy;
import static org.junit.jupiter.api.Assertions.assertTimeoutPreemptively;

import com.fasterxml.jackson.databind.JsonNode;
import com.fasterxml.jackson.databind.ObjectMapper;
import io.tidemark.core.RetriableException;
import java.io.BufferedReader;
import java.io.IOException;
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
import java.util.ArrayList;
import java.util.List;
import java.util.concurrent.CompletableFuture;
import java.util.concurrent.TimeUnit;
import org.junit.jupiter.api.AfterEach;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;

/** Against a scripted in-process QMP server, so no QEMU is needed. */
class QmpClientTest {

    private static final ObjectMapper JSON = new ObjectMapper();

    @TempDir
    Path dir;

    private ServerSocketChannel server;

    @AfterEach
    void stop() throws IOException {
        if (server != null) {
            server.close();
        }
    }

    /**
     * Greets, then answers each command: {@code emit-then-ok} sends an event before its reply,
     * {@code fail} an error, everything else {@code {"return":{}}}.
     */
    private Path scriptedServer(boolean greet) throws IOException {
        Path socket = dir.resolve("vm.qmp");
        server = ServerSocketChannel.open(StandardProtocolFamily.UNIX);
        server.bind(UnixDomainSocketAddress.of(socket));
        Thread t = new Thread(() -> {
            try (SocketChannel ch = server.accept()) {
                // blocking channel; this thread alone reads and writes it, one after the other
                BufferedReader in =
                        new BufferedReader(new InputStreamReader(Channels.newInputStream(ch), StandardCharsets.UTF_8));
                OutputStream out = Channels.newOutputStream(ch);
                if (!greet) {
                    in.readLine();
                    return;
                }
                send(out, "{\"QMP\":{\"version\":{\"qemu\":{\"major\":7}},\"capabilities\":[]}}");
                String line;
                while ((line = in.readLine()) != null) {
                    JsonNode cmd = JSON.readTree(line);
                    String id = cmd.get("id").toString();
                    switch (cmd.get("execute").asText()) {
                        case "emit-then-ok" -> {
                            send(out, "{\"event\":\"BLOCK_JOB_CANCELLED\",\"data\":{\"device\":\"j1\"}}");
                            send(out, "{\"event\":\"BLOCK_EXPORT_DELETED\",\"data\":{\"id\":\"e1\"}}");
                            send(out, "{\"return\":{\"ok\":1},\"id\":" + id + "}");
                        }
                        case "silence" -> {
                            // a QEMU that stopped answering
                        }
                        case "fail" ->
                            send(
                                    out,
                                    "{\"error\":{\"class\":\"GenericError\",\"desc\":\"Bitmap 'x' not found\"},\"id\":"
                                            + id + "}");
                        default -> send(out, "{\"return\":{},\"id\":" + id + "}");
                    }
                }
            } catch (IOException e) {
                // the test closed the server
            }
        });
        t.setDaemon(true);
        t.start();
        return socket;
    }

    private static void send(OutputStream out, String line) throws IOException {
        out.write((line + "\n").getBytes(StandardCharsets.UTF_8));
        out.flush();
    }

    @Test
    void executeReturnsTheReturnValueAndEventsArrivingBeforeTheWaitAreKept() throws IOException {
        try (QmpClient c = QmpClient.connect(scriptedServer(true), Duration.ofSeconds(5))) {
            assertThat(c.greeting().path("version").path("qemu").path("major").asInt())
                    .isEqualTo(7);
            assertThat(c.execute("emit-then-ok").path("ok").asInt()).isEqualTo(1);
            JsonNode deleted = c.awaitEvent(
                    "BLOCK_EXPORT_DELETED",
                    e -> e.path("data").path("id").asText().equals("e1"),
                    Duration.ZERO);
            assertThat(deleted.path("event").asText()).isEqualTo("BLOCK_EXPORT_DELETED");
            JsonNode cancelled = c.awaitEvent("BLOCK_JOB_CANCELLED", e -> true, Duration.ofSeconds(1));
            assertThat(cancelled.path("data").path("device").asText()).isEqualTo("j1");
            assertThatThrownBy(() -> c.awaitEvent("BLOCK_JOB_CANCELLED", e -> true, Duration.ofMillis(50)))
                    .isInstanceOf(RetriableException.class)
                    .hasMessageContaining("BLOCK_JOB_CANCELLED");
        }
    }

    @Test
    void anErrorReplyIsAQmpExceptionWithClassAndDescription() throws IOException {
        Path socket = scriptedServer(true);
        try (QmpClient c = QmpClient.connect(socket, Duration.ofSeconds(5))) {
            assertThatThrownBy(() -> c.execute("fail", QmpClient.args().put("x", 1)))
                    .isInstanceOfSatisfying(QmpException.class, e -> {
                        assertThat(e.errorClass()).isEqualTo("GenericError");
                        assertThat(e.description()).isEqualTo("Bitmap 'x' not found");
                        assertThat(e.getMessage()).contains(socket.toString(), "'fail'");
                    });
            assertThat(c.execute("query-status").isObject()).isTrue();
        }
    }

    @Test
    void aSilentSocketIsRetriable() throws IOException {
        Path socket = scriptedServer(false);
        assertThatThrownBy(() -> QmpClient.connect(socket, Duration.ofMillis(200)))
                .isInstanceOf(RetriableException.class)
                .hasMessageContaining(socket.toString())
                .hasMessageContaining("no greeting");
    }

    /** A server that accepts every connection and never writes a byte (a QEMU stopped with SIGSTOP). */
    private Path muteServer() throws IOException {
        Path socket = dir.resolve("mute.qmp");
        server = ServerSocketChannel.open(StandardProtocolFamily.UNIX);
        server.bind(UnixDomainSocketAddress.of(socket));
        Thread t = new Thread(() -> {
            List<SocketChannel> held = new ArrayList<>();
            try {
                while (true) {
                    held.add(server.accept());
                }
            } catch (IOException e) {
                held.forEach(QmpClientTest::closeQuietly);
            }
        });
        t.setDaemon(true);
        t.start();
        return socket;
    }

    private static void closeQuietly(SocketChannel c) {
        try {
            c.close();
        } catch (IOException e) {
            // the test is over
        }
    }

    @Test
    void aServerThatAcceptsAndNeverAnswersIsRetriableWithinTheTimeoutAndSaysQemuMayBeStopped() throws IOException {
        Path socket = muteServer();
        long t0 = System.nanoTime();
        assertThatThrownBy(() -> QmpClient.connect(socket, Duration.ofMillis(500)))
                .isInstanceOf(RetriableException.class)
                .hasMessageContaining(socket.toString())
                .hasMessageContaining("stopped")
                .hasMessageContaining("hung");
        assertThat(Duration.ofNanos(System.nanoTime() - t0)).isLessThan(Duration.ofSeconds(5));
    }

    @Test
    void aCommandThatGetsNoReplyIsRetriableWithinTheTimeoutAndSaysQemuMayBeStopped() throws IOException {
        Path socket = scriptedServer(true);
        try (QmpClient c = QmpClient.connect(socket, Duration.ofMillis(500))) {
            long t0 = System.nanoTime();
            assertThatThrownBy(() -> c.execute("silence"))
                    .isInstanceOf(RetriableException.class)
                    .hasMessageContaining(socket.toString())
                    .hasMessageContaining("stopped")
                    .hasMessageContaining("hung");
            assertThat(Duration.ofNanos(System.nanoTime() - t0)).isLessThan(Duration.ofSeconds(5));
            assertThat(c.isOpen()).isFalse();
        }
    }

    /**
     * A QEMU stopped with SIGSTOP accepts nothing; once its listen backlog is full, connect() on a Unix
     * socket blocks in the kernel. The client must still give up within its timeout.
     */
    @Test
    void aConnectToASocketWhoseBacklogIsFullGivesUpWithinTheTimeout() throws IOException {
        Path socket = dir.resolve("full.qmp");
        server = ServerSocketChannel.open(StandardProtocolFamily.UNIX);
        server.bind(UnixDomainSocketAddress.of(socket), 1);
        List<SocketChannel> queued = new ArrayList<>();
        try {
            for (int i = 0; i < 2; i++) { // fill the backlog; nobody ever accepts
                SocketChannel c = SocketChannel.open(StandardProtocolFamily.UNIX);
                c.connect(UnixDomainSocketAddress.of(socket));
                queued.add(c);
            }
            long t0 = System.nanoTime();
            assertTimeoutPreemptively(Duration.ofSeconds(20), () -> assertThatThrownBy(
                            () -> QmpClient.connect(socket, Duration.ofMillis(500)))
                    .isInstanceOf(RetriableException.class)
                    .hasMessageContaining(socket.toString())
                    .hasMessageContaining("stopped"));
            assertThat(Duration.ofNanos(System.nanoTime() - t0)).isLessThan(Duration.ofSeconds(5));
        } finally {
            queued.forEach(QmpClientTest::closeQuietly);
        }
    }

    @Test
    void aCloseFromAnotherThreadUnblocksAWaitingCommandAtOnce() throws Exception {
        Path socket = scriptedServer(true);
        QmpClient c = QmpClient.connect(socket, Duration.ofSeconds(60));
        CompletableFuture<Throwable> waiting = CompletableFuture.supplyAsync(() -> {
            try {
                c.execute("silence");
                return null;
            } catch (RuntimeException e) {
                return e;
            }
        });
        Thread.onSpinWait();
        c.close();
        assertThat(waiting.get(5, TimeUnit.SECONDS)).isInstanceOf(RetriableException.class);
    }

    @Test
    void anUnreachableSocketIsRetriableAndNamesThePath() {
        Path socket = dir.resolve("gone.qmp");
        assertThatThrownBy(() -> QmpClient.connect(socket, Duration.ofSeconds(1)))
                .isInstanceOf(RetriableException.class)
                .hasMessageContaining(socket.toString());
    }

    @Test
    void aClosedConnectionFailsLaterCommandsAsRetriable() throws IOException {
        QmpClient c = QmpClient.connect(scriptedServer(true), Duration.ofSeconds(5));
        c.close();
        assertThat(c.isOpen()).isFalse();
        assertThatThrownBy(() -> c.execute("query-status")).isInstanceOf(RetriableException.class);
    }
}
