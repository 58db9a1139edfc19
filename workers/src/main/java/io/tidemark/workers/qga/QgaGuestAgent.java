package io.tidemark.workers.qga;

import com.fasterxml.jackson.databind.JsonNode;
import com.fasterxml.jackson.databind.ObjectMapper;
import com.fasterxml.jackson.databind.node.ObjectNode;
import io.tidemark.core.PermanentException;
import io.tidemark.core.RetriableException;
import io.tidemark.core.concurrent.DaemonThreads;
import io.tidemark.core.hypervisor.GuestAgent;
import java.io.ByteArrayOutputStream;
import java.io.IOException;
import java.net.StandardProtocolFamily;
import java.net.UnixDomainSocketAddress;
import java.nio.ByteBuffer;
import java.nio.channels.SocketChannel;
import java.nio.charset.StandardCharsets;
import java.nio.file.Path;
import java.security.SecureRandom;
import java.time.Duration;
import java.util.Base64;
import java.util.List;
import java.util.concurrent.Executors;
import java.util.concurrent.ScheduledExecutorService;
import java.util.concurrent.ScheduledFuture;
import java.util.concurrent.TimeUnit;
import java.util.concurrent.atomic.AtomicBoolean;

/**
 * QEMU's guest agent (qemu-ga) of one VM, reached through the Unix socket QEMU serves for the
 * guest's {@code org.qemu.guest_agent.0} port ({@code -chardev socket,path=<socket>,server=on,
 * wait=off} plus a {@code virtserialport} of that name).
 *
 * <p>Contract:
 *
 * <ul>
 *   <li>Each call opens its own connection, resynchronises with {@code guest-sync-delimited} (the
 *       agent may still hold a reply meant for an earlier client; no 0xFF byte is sent first:
 *       qemu-ga 7.2 rejects it and every later reply is then off by one), runs one command and
 *       closes. So the worker holds the socket only for milliseconds and a restarted QEMU or agent
 *       needs no reconnect logic.
 *   <li>The deadline covers the whole call. A missing socket, a refused connection, a closed one,
 *       or no reply in time is a {@link RetriableException}; an {@code error} reply is a {@link
 *       PermanentException}. Both name the VM and the socket.
 *   <li>Thread-safe: calls on one instance are serialised (QEMU serves one client per socket).
 * </ul>
 */
public final class QgaGuestAgent implements GuestAgent {

    private static final ObjectMapper JSON = new ObjectMapper();
    private static final SecureRandom RANDOM = new SecureRandom();
    private static final int MAX_LINE = 16 << 20;
    private static final ScheduledExecutorService TIMER =
            Executors.newSingleThreadScheduledExecutor(DaemonThreads.named("qga-deadline"));

    private final String vm;
    private final Path socket;

    /**
     * @param vm the VM's name, for messages
     * @param socket the host end of the guest agent's virtio-serial port
     */
    public QgaGuestAgent(String vm, Path socket) {
        this.vm = vm;
        this.socket = socket;
    }

    /** The result of a command run in the guest by {@link #exec}. */
    public record ExecResult(int exitCode, String stdout, String stderr) {}

    @Override
    public void ping(Duration deadline) {
        call("guest-ping", null, deadline);
    }

    @Override
    public FreezeStatus status(Duration deadline) {
        String s = call("guest-fsfreeze-status", null, deadline).asText();
        return switch (s) {
            case "thawed" -> FreezeStatus.THAWED;
            case "frozen" -> FreezeStatus.FROZEN;
            default ->
                throw new PermanentException("the guest agent of VM '" + vm + "' on " + socket
                        + " reports the unknown freeze status '" + s + "'");
        };
    }

    @Override
    public int freeze(Duration deadline) {
        return call("guest-fsfreeze-freeze", null, deadline).asInt();
    }

    @Override
    public int thaw(Duration deadline) {
        return call("guest-fsfreeze-thaw", null, deadline).asInt();
    }

    @Override
    public String describe() {
        return "the guest agent of VM '" + vm + "' on " + socket;
    }

    /** The socket this agent is reached through. */
    public Path socket() {
        return socket;
    }

    /**
     * Runs {@code path args...} in the guest ({@code guest-exec}) and waits for it to exit, polling
     * {@code guest-exec-status}; for tests and drills. The deadline covers the whole run.
     */
    public ExecResult exec(Duration deadline, String path, List<String> args) {
        long end = System.nanoTime() + deadline.toNanos();
        ObjectNode a = JSON.createObjectNode().put("path", path).put("capture-output", true);
        args.forEach(a.putArray("arg")::add);
        long pid = call("guest-exec", a, deadline).path("pid").asLong();
        long pause = 5;
        while (true) {
            Duration left = Duration.ofNanos(end - System.nanoTime());
            if (left.isNegative()) {
                throw new RetriableException("'" + path + " " + String.join(" ", args) + "' in VM '" + vm + "' (pid "
                        + pid + ") did not exit within " + deadline);
            }
            JsonNode st = call("guest-exec-status", JSON.createObjectNode().put("pid", pid), left);
            if (st.path("exited").asBoolean()) {
                return new ExecResult(
                        st.path("exitcode").asInt(-1), decode(st.path("out-data")), decode(st.path("err-data")));
            }
            try {
                Thread.sleep(pause); // polling the guest: the agent has no completion event
            } catch (InterruptedException e) {
                Thread.currentThread().interrupt();
                throw new RetriableException("interrupted while waiting for a command in VM '" + vm + "'", e);
            }
            pause = Math.min(200, pause * 2);
        }
    }

    private static String decode(JsonNode base64) {
        return base64.isMissingNode() || base64.isNull()
                ? ""
                : new String(Base64.getDecoder().decode(base64.asText()), StandardCharsets.UTF_8);
    }

    /** One command on a fresh, resynchronised connection; returns its {@code return} value. */
    synchronized JsonNode call(String command, ObjectNode args, Duration deadline) {
        SocketChannel ch;
        try {
            ch = SocketChannel.open(StandardProtocolFamily.UNIX);
        } catch (IOException e) {
            throw new RetriableException("cannot open a Unix socket for " + describe() + ": " + e, e);
        }
        AtomicBoolean timedOut = new AtomicBoolean();
        ScheduledFuture<?> alarm = TIMER.schedule(
                () -> {
                    timedOut.set(true);
                    closeQuietly(ch);
                },
                deadline.toNanos(),
                TimeUnit.NANOSECONDS);
        try {
            ch.connect(UnixDomainSocketAddress.of(socket));
            LineReader in = new LineReader(ch);
            long id = RANDOM.nextInt(Integer.MAX_VALUE);
            send(
                    ch,
                    JSON.createObjectNode()
                            .put("execute", "guest-sync-delimited")
                            .set("arguments", JSON.createObjectNode().put("id", id)));
            while (true) {
                JsonNode r = in.next();
                if (r.has("return") && r.get("return").asLong(-1) == id) {
                    break; // replies meant for earlier clients are discarded above
                }
            }
            ObjectNode cmd = JSON.createObjectNode().put("execute", command);
            if (args != null) {
                cmd.set("arguments", args);
            }
            send(ch, cmd);
            JsonNode r = in.next();
            if (r.has("error")) {
                JsonNode err = r.get("error");
                throw new PermanentException(describe() + " refused " + command + ": "
                        + err.path("class").asText() + ": " + err.path("desc").asText());
            }
            return r.path("return");
        } catch (IOException e) {
            if (timedOut.get()) {
                throw new RetriableException(
                        describe() + " did not answer " + command + " within " + deadline
                                + "; is qemu-guest-agent running in the guest?",
                        e);
            }
            throw new RetriableException(
                    "cannot talk to " + describe() + " (" + e + "); check that the VM has a virtio-serial port"
                            + " org.qemu.guest_agent.0 on that socket and that qemu-guest-agent runs in the guest",
                    e);
        } finally {
            alarm.cancel(false);
            closeQuietly(ch);
        }
    }

    private static void send(SocketChannel ch, JsonNode message) throws IOException {
        ByteBuffer b = ByteBuffer.wrap((JSON.writeValueAsString(message) + "\n").getBytes(StandardCharsets.UTF_8));
        while (b.hasRemaining()) {
            ch.write(b);
        }
    }

    private static void closeQuietly(SocketChannel ch) {
        try {
            ch.close();
        } catch (IOException e) {
            // closing is best effort: the call's outcome is decided already
        }
    }

    /** Reads newline-delimited JSON replies, dropping the 0xFF bytes qemu-ga puts before a sync reply. */
    private final class LineReader {
        private final SocketChannel ch;
        private final ByteBuffer buf = ByteBuffer.allocate(8192);

        LineReader(SocketChannel ch) {
            this.ch = ch;
            buf.flip();
        }

        JsonNode next() throws IOException {
            while (true) {
                ByteArrayOutputStream line = new ByteArrayOutputStream();
                while (true) {
                    if (!buf.hasRemaining()) {
                        buf.clear();
                        int n = ch.read(buf);
                        buf.flip();
                        if (n < 0) {
                            throw new IOException("the agent's socket was closed");
                        }
                        continue;
                    }
                    byte c = buf.get();
                    if (c == '\n') {
                        break;
                    }
                    if (c != (byte) 0xFF) {
                        line.write(c);
                    }
                    if (line.size() > MAX_LINE) {
                        throw new IOException("a reply longer than " + MAX_LINE + " bytes");
                    }
                }
                String s = line.toString(StandardCharsets.UTF_8).trim();
                if (s.isEmpty()) {
                    continue;
                }
                try {
                    return JSON.readTree(s);
                } catch (IOException e) {
                    throw new PermanentException(describe() + " sent a reply that is not JSON: " + s, e);
                }
            }
        }
    }

    @Override
    public String toString() {
        return "QgaGuestAgent[" + vm + " on " + socket + "]";
    }
}
