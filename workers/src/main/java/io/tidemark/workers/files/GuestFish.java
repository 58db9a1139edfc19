package io.tidemark.workers.files;

import io.tidemark.core.PermanentException;
import io.tidemark.core.RetriableException;
import io.tidemark.core.process.ExternalCommand;
import java.io.IOException;
import java.io.RandomAccessFile;
import java.nio.charset.StandardCharsets;
import java.nio.file.Files;
import java.nio.file.Path;
import java.time.Duration;
import java.util.ArrayList;
import java.util.List;
import java.util.Map;
import java.util.concurrent.TimeUnit;
import java.util.regex.Matcher;
import java.util.regex.Pattern;

/**
 * One read-only libguestfs appliance, kept running for several commands: a {@code guestfish
 * --listen} server over one disk, driven by {@code guestfish --remote} calls.
 *
 * <p>Contract:
 *
 * <ul>
 *   <li>{@link #launch} starts the server on the disk at {@code uri} (an {@code nbd://} URI or a raw
 *       file) read-only and boots the appliance ({@code run}); KVM is used when libguestfs finds it
 *       usable, else TCG (libguestfs decides; {@code LIBGUESTFS_BACKEND_SETTINGS=force_tcg} in the
 *       environment forces TCG where /dev/kvm exists but does not work).
 *   <li>Every command is sent with guestfish's {@code -} prefix so that a failing command does not
 *       stop the server; its error, which the server writes to its own stderr (the file {@code log}),
 *       is read back from there and thrown as a {@link GuestFishException}. Calls are serialised.
 *   <li>{@link #close()} asks the server to exit and, if it does not, kills it.
 * </ul>
 */
public final class GuestFish implements AutoCloseable {

    private static final Pattern PID = Pattern.compile("GUESTFISH_PID=(\\d+)");
    private static final String ERROR = "libguestfs: error: ";

    /** A command that the appliance answered with an error. */
    public static final class GuestFishException extends PermanentException {
        private static final long serialVersionUID = 1L;
        private final String detail;

        GuestFishException(String command, String detail) {
            super("guestfish " + command + ": " + detail);
            this.detail = detail;
        }

        /** libguestfs's own message (without the command). */
        public String detail() {
            return detail;
        }
    }

    private final long pid;
    private final Path log;
    private final Duration callTimeout;
    private long logOffset;
    private boolean closed;

    private GuestFish(long pid, Path log, Duration callTimeout) {
        this.pid = pid;
        this.log = log;
        this.callTimeout = callTimeout;
    }

    /**
     * Starts the server on {@code uri} and boots the appliance, waiting at most {@code launchTimeout}.
     *
     * @param env extra environment (the appliance's kernel: {@link GuestFsKernel#environment()})
     * @param log the server's stderr: libguestfs errors and, on launch failures, why
     */
    public static GuestFish launch(
            String uri, Map<String, String> env, Path log, Duration launchTimeout, Duration callTimeout) {
        ProcessBuilder pb = new ProcessBuilder("guestfish", "--listen", "--ro", "--format=raw", "-a", uri);
        pb.environment().putAll(env);
        pb.redirectInput(ProcessBuilder.Redirect.from(new java.io.File("/dev/null")));
        pb.redirectError(ProcessBuilder.Redirect.appendTo(log.toFile()));
        String out;
        try {
            Process p = pb.start();
            out = new String(p.getInputStream().readAllBytes(), StandardCharsets.UTF_8);
            if (!p.waitFor(30, TimeUnit.SECONDS) || p.exitValue() != 0) {
                p.destroyForcibly();
                throw new PermanentException("guestfish --listen on " + uri + " failed: " + tail(log)
                        + "; install libguestfs-tools (deploy/install-deps.sh)");
            }
        } catch (IOException e) {
            throw new PermanentException(
                    "cannot start guestfish (" + e.getMessage()
                            + "); install libguestfs-tools (deploy/install-deps.sh)",
                    e);
        } catch (InterruptedException e) {
            Thread.currentThread().interrupt();
            throw new RetriableException("interrupted while starting guestfish", e);
        }
        Matcher m = PID.matcher(out);
        if (!m.find()) {
            throw new PermanentException("guestfish --listen printed no GUESTFISH_PID: '" + out.strip() + "'");
        }
        GuestFish g = new GuestFish(Long.parseLong(m.group(1)), log, callTimeout);
        try {
            g.call(launchTimeout, "run");
        } catch (GuestFishException | RetriableException e) {
            g.close();
            throw new PermanentException(
                    "the libguestfs appliance did not start: " + e.getMessage()
                            + "; run `libguestfs-test-tool` to see why; where /dev/kvm exists but does not work, set"
                            + " LIBGUESTFS_BACKEND_SETTINGS=force_tcg (details in " + log + ")",
                    e);
        }
        return g;
    }

    /** The server's process id. */
    public long pid() {
        return pid;
    }

    /**
     * Runs one guestfish command and returns its stdout.
     *
     * @throws GuestFishException the command failed (libguestfs's message)
     */
    public String call(String... command) {
        return call(callTimeout, command);
    }

    /** Like {@link #call(String...)}, split into lines (no trailing empty line). */
    public List<String> lines(String... command) {
        String out = call(command);
        List<String> lines = new ArrayList<>(List.of(out.split("\n", -1)));
        if (!lines.isEmpty() && lines.get(lines.size() - 1).isEmpty()) {
            lines.remove(lines.size() - 1);
        }
        return lines;
    }

    private synchronized String call(Duration timeout, String... command) {
        if (closed) {
            throw new PermanentException("the libguestfs appliance is closed");
        }
        List<String> args = new ArrayList<>(List.of("--remote=" + pid, "--", "-" + command[0]));
        args.addAll(List.of(command).subList(1, command.length));
        ExternalCommand.Result r = ExternalCommand.of("guestfish", args.toArray(String[]::new))
                .timeout(timeout)
                .outputLimit(64 << 20)
                .runForExit();
        String errors = newLog();
        int at = errors.indexOf(ERROR);
        if (at >= 0) {
            throw new GuestFishException(
                    String.join(" ", command),
                    errors.substring(at + ERROR.length()).strip());
        }
        if (r.exitCode() != 0) {
            throw new PermanentException("guestfish " + String.join(" ", command) + " exited with " + r.exitCode()
                    + ": " + r.stderr().strip() + errors.strip() + " (is the appliance still running?)");
        }
        return r.stdout();
    }

    /** What the server wrote to its stderr since the last call. */
    private String newLog() {
        try (RandomAccessFile f = new RandomAccessFile(log.toFile(), "r")) {
            long len = f.length();
            if (len <= logOffset) {
                return "";
            }
            byte[] b = new byte[(int) Math.min(len - logOffset, 1 << 20)];
            f.seek(logOffset);
            f.readFully(b);
            logOffset = len;
            return new String(b, StandardCharsets.UTF_8);
        } catch (IOException e) {
            return "";
        }
    }

    private static String tail(Path log) {
        try {
            String s = Files.readString(log);
            return s.length() > 2000 ? s.substring(s.length() - 2000) : s.strip();
        } catch (IOException e) {
            return "(no log: " + e.getMessage() + ")";
        }
    }

    /** Stops the server (and with it the appliance). */
    @Override
    public synchronized void close() {
        if (closed) {
            return;
        }
        closed = true;
        try {
            ExternalCommand.of("guestfish", "--remote=" + pid, "exit")
                    .timeout(Duration.ofSeconds(30))
                    .runForExit();
        } catch (RetriableException | PermanentException e) {
            // the server is gone or hangs: kill it below
        }
        ProcessHandle.of(pid)
                .filter(h ->
                        h.info().command().map(c -> c.endsWith("guestfish")).orElse(false))
                .ifPresent(h -> {
                    try {
                        h.onExit().get(30, TimeUnit.SECONDS);
                    } catch (InterruptedException e) {
                        Thread.currentThread().interrupt();
                    } catch (java.util.concurrent.ExecutionException | java.util.concurrent.TimeoutException e) {
                        h.descendants().forEach(ProcessHandle::destroyForcibly);
                        h.destroyForcibly();
                    }
                });
    }
}
