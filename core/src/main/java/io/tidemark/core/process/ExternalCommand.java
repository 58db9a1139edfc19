package io.tidemark.core.process;

import io.tidemark.core.PermanentException;
import io.tidemark.core.RetriableException;
import java.io.ByteArrayOutputStream;
import java.io.File;
import java.io.IOException;
import java.io.InputStream;
import java.nio.charset.StandardCharsets;
import java.nio.file.Path;
import java.time.Duration;
import java.util.ArrayList;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Map;
import java.util.Objects;
import java.util.Optional;
import java.util.concurrent.TimeUnit;

/**
 * One external command line, run the one way every module uses:
 *
 * <ul>
 *   <li>{@link #run()} waits at most {@link #timeout(Duration)} (default 2 minutes), captures stdout and
 *       stderr up to {@link #outputLimit(int)} bytes each (the rest is read and dropped, so the child
 *       never blocks on a full pipe), and throws {@link PermanentException} on a non-zero exit;
 *       {@link #runForExit()} returns the exit code for callers that branch on it;
 *   <li>{@link #start(Path)} starts a long-running child (QEMU, qemu-nbd, a server) with its output
 *       appended to a log file; {@link Running#stop(Duration)} stops it with a bounded wait.
 * </ul>
 *
 * <p>Errors name the command line with arguments added by {@link #secret(String)} shown as {@code ***},
 * and say what to do: {@link #ifMissing(String)} (e.g. "install qemu-utils") when the program cannot be
 * started, {@link #hint(String)} when it fails or times out. A binary that cannot be started
 * is a {@link PermanentException}; a timeout or an interrupt kills the child (and its descendants)
 * and is a {@link RetriableException} (the interrupt flag stays set).
 *
 * <p>Instances are mutable builders, not thread-safe; each {@code run} starts a new process.
 */
public final class ExternalCommand {

    /** Default bound on the wait of {@link #run()}. */
    public static final Duration DEFAULT_TIMEOUT = Duration.ofMinutes(2);

    /** Default bound on the captured bytes of each of stdout and stderr. */
    public static final int DEFAULT_OUTPUT_LIMIT = 1 << 20;

    private static final String REDACTED = "***";
    private static final Duration KILL_WAIT = Duration.ofSeconds(10);

    private final List<String> args = new ArrayList<>();
    /** Per argument: how a secret one is shown, or null for a plain one. */
    private final List<String> shown = new ArrayList<>();

    private final Map<String, String> env = new LinkedHashMap<>();
    private Path directory;
    private Duration timeout = DEFAULT_TIMEOUT;
    private int outputLimit = DEFAULT_OUTPUT_LIMIT;
    private String hint = "";
    private String ifMissing = "";
    private boolean mergeStderr;
    private Path outputFile;
    private java.util.function.Predicate<String> removeEnv = n -> false;

    private ExternalCommand() {}

    /** A command: the program (looked up on PATH unless it has a slash) and its plain arguments. */
    public static ExternalCommand of(String program, String... args) {
        ExternalCommand c = new ExternalCommand();
        c.arg(program);
        for (String a : args) {
            c.arg(a);
        }
        return c;
    }

    /** A command from a full command line (program first). */
    public static ExternalCommand of(List<String> commandLine) {
        if (commandLine.isEmpty()) {
            throw new IllegalArgumentException("an empty command line");
        }
        ExternalCommand c = new ExternalCommand();
        commandLine.forEach(c::arg);
        return c;
    }

    /** Appends a plain argument (shown as is in errors). */
    public ExternalCommand arg(String arg) {
        args.add(Objects.requireNonNull(arg, "arg"));
        shown.add(null);
        return this;
    }

    /** Appends plain arguments. */
    public ExternalCommand args(List<String> more) {
        more.forEach(this::arg);
        return this;
    }

    /**
     * Appends an argument that is never shown: errors and {@link #toString()} print {@code ***}, and
     * the program's output quoted in errors has it replaced too.
     */
    public ExternalCommand secret(String arg) {
        return secret(arg, REDACTED);
    }

    /**
     * Appends an argument that is shown as {@code shownAs} (e.g. {@code rbd:pool/image} for a spec
     * that holds a key) in errors, {@link #toString()} and the output quoted in errors.
     */
    public ExternalCommand secret(String arg, String shownAs) {
        args.add(Objects.requireNonNull(arg, "arg"));
        shown.add(Objects.requireNonNull(shownAs, "shownAs"));
        return this;
    }

    /** Runs in {@code dir} instead of this process's working directory. */
    public ExternalCommand directory(Path dir) {
        this.directory = dir;
        return this;
    }

    /** Sets one environment variable of the child (added to this process's environment). */
    public ExternalCommand env(String name, String value) {
        env.put(name, value);
        return this;
    }

    /** Leaves out of the child's environment the inherited variables whose name matches. */
    public ExternalCommand removeEnv(java.util.function.Predicate<String> name) {
        this.removeEnv = this.removeEnv.or(name);
        return this;
    }

    /** Bounds the wait of {@link #run()} / {@link #runForExit()}. */
    public ExternalCommand timeout(Duration timeout) {
        if (timeout.isNegative() || timeout.isZero()) {
            throw new IllegalArgumentException("timeout must be positive: " + timeout);
        }
        this.timeout = timeout;
        return this;
    }

    /** Bounds the bytes kept of each of stdout and stderr (the rest is read and dropped). */
    public ExternalCommand outputLimit(int bytes) {
        if (bytes < 0) {
            throw new IllegalArgumentException("outputLimit must be >= 0: " + bytes);
        }
        this.outputLimit = bytes;
        return this;
    }

    /**
     * What to do when the program cannot be started, appended to that error (e.g. "install
     * qemu-utils"); without it the error asks whether the program is installed and on PATH.
     */
    public ExternalCommand ifMissing(String whatToDo) {
        this.ifMissing = Objects.requireNonNull(whatToDo, "whatToDo");
        return this;
    }

    /**
     * What to do when the program fails or times out, appended to those errors (e.g. "check that the
     * work directory is writable and has free space").
     */
    public ExternalCommand hint(String whatToDo) {
        this.hint = Objects.requireNonNull(whatToDo, "whatToDo");
        return this;
    }

    /**
     * Appends stdout and stderr to {@code file} instead of capturing them through pipes, for programs
     * that daemonize and leave a child holding their stdio (QEMU {@code -daemonize}, ceph daemons);
     * {@link Result#stdout()} then holds the file's last {@link #outputLimit(int)} bytes.
     */
    public ExternalCommand outputFile(Path file) {
        this.outputFile = file;
        return this;
    }

    /** Captures stderr into {@link Result#stdout()} interleaved with stdout (like {@code 2>&1}). */
    public ExternalCommand mergeStderr() {
        this.mergeStderr = true;
        return this;
    }

    /** The command line, secrets shown as {@code ***}; safe for logs and errors. */
    @Override
    public String toString() {
        StringBuilder b = new StringBuilder();
        for (int i = 0; i < args.size(); i++) {
            if (i > 0) {
                b.append(' ');
            }
            b.append(shown.get(i) != null ? shown.get(i) : args.get(i));
        }
        return b.toString();
    }

    /** The program's name (first argument). */
    public String program() {
        return args.get(0);
    }

    /**
     * Runs the command to completion.
     *
     * @throws PermanentException the program cannot be started, or it exited non-zero (the message holds
     *     the exit code and the tail of its output)
     * @throws RetriableException it did not finish within the timeout, or this thread was interrupted
     *     (the child is killed in both cases)
     */
    public Result run() {
        Result r = runForExit();
        if (r.exitCode() != 0) {
            throw new PermanentException(failure(r));
        }
        return r;
    }

    /**
     * Runs the command to completion and returns whatever exit code it had; for callers that give
     * meaning to non-zero codes (fsck, {@code ceph health}).
     *
     * @throws PermanentException the program cannot be started
     * @throws RetriableException timeout or interrupt (the child is killed)
     */
    public Result runForExit() {
        ProcessBuilder pb = builder().redirectInput(ProcessBuilder.Redirect.from(new File("/dev/null")));
        if (outputFile != null) {
            return runToFile(pb);
        }
        pb.redirectErrorStream(mergeStderr);
        Process p = startOrThrow(pb);
        Drain out = Drain.start(p.getInputStream(), outputLimit, "stdout of " + program());
        Drain err = mergeStderr ? null : Drain.start(p.getErrorStream(), outputLimit, "stderr of " + program());
        try {
            if (!p.waitFor(timeout.toNanos(), TimeUnit.NANOSECONDS)) {
                kill(p);
                out.join(Duration.ofSeconds(1));
                if (err != null) {
                    err.join(Duration.ofSeconds(1));
                }
                throw new RetriableException(
                        this + " did not finish within " + timeout + " and was killed" + tailOf(out, err) + suffix());
            }
            out.join(KILL_WAIT);
            if (err != null) {
                err.join(KILL_WAIT);
            }
            return new Result(
                    p.exitValue(),
                    out.text(),
                    err == null ? "" : err.text(),
                    out.truncated() || (err != null && err.truncated()));
        } catch (InterruptedException e) {
            kill(p);
            Thread.currentThread().interrupt();
            throw new RetriableException("interrupted while running " + this + "; the process was killed", e);
        }
    }

    private Result runToFile(ProcessBuilder pb) {
        pb.redirectErrorStream(true).redirectOutput(ProcessBuilder.Redirect.appendTo(outputFile.toFile()));
        Process p = startOrThrow(pb);
        try {
            if (!p.waitFor(timeout.toNanos(), TimeUnit.NANOSECONDS)) {
                kill(p);
                throw new RetriableException(this + " did not finish within " + timeout + " and was killed; output in "
                        + outputFile + suffix());
            }
            return new Result(p.exitValue(), fileTail(), "", false);
        } catch (InterruptedException e) {
            kill(p);
            Thread.currentThread().interrupt();
            throw new RetriableException("interrupted while running " + this + "; the process was killed", e);
        }
    }

    private String fileTail() {
        try (java.nio.channels.FileChannel ch = java.nio.channels.FileChannel.open(outputFile)) {
            long from = Math.max(0, ch.size() - outputLimit);
            java.nio.ByteBuffer b = java.nio.ByteBuffer.allocate((int) (ch.size() - from));
            while (b.hasRemaining() && ch.read(b, from + b.position()) >= 0) {
                // read fully
            }
            return new String(b.array(), 0, b.position(), StandardCharsets.UTF_8);
        } catch (IOException e) {
            return "(cannot read " + outputFile + ": " + e.getMessage() + ")";
        }
    }

    /**
     * Starts a long-running child whose stdout and stderr are appended to {@code log} and whose stdin
     * is empty; stop it with {@link Running#stop(Duration)} or {@link Running#close()}.
     *
     * @throws PermanentException the program cannot be started
     */
    public Running start(Path log) {
        ProcessBuilder pb = builder()
                .redirectInput(ProcessBuilder.Redirect.from(new File("/dev/null")))
                .redirectErrorStream(true)
                .redirectOutput(ProcessBuilder.Redirect.appendTo(log.toFile()));
        return new Running(startOrThrow(pb), toString(), log);
    }

    private ProcessBuilder builder() {
        ProcessBuilder pb = new ProcessBuilder(args);
        if (directory != null) {
            pb.directory(directory.toFile());
        }
        pb.environment().keySet().removeIf(removeEnv);
        pb.environment().putAll(env);
        return pb;
    }

    private Process startOrThrow(ProcessBuilder pb) {
        try {
            return pb.start();
        } catch (IOException e) {
            throw new PermanentException(
                    "cannot run " + program() + " (" + this + "): " + e.getMessage()
                            + (ifMissing.isEmpty() ? "; is it installed and on PATH?" : "; " + ifMissing),
                    e);
        }
    }

    /** The message of {@link #run()} for a non-zero exit. */
    public String failure(Result r) {
        String tail = r.stderr().isBlank() ? r.stdout() : r.stderr();
        return this + " failed with exit code " + r.exitCode() + (tail.isBlank() ? "" : ": " + tail(tail.strip()))
                + suffix();
    }

    private String suffix() {
        return hint.isEmpty() ? "" : " (" + hint + ")";
    }

    private String tailOf(Drain out, Drain err) {
        String text = err != null && !err.text().isBlank() ? err.text() : out.text();
        return text.isBlank() ? "" : "; output: " + tail(text.strip());
    }

    /** The last 2000 characters of the program's output, secret arguments replaced by how they are shown. */
    private String tail(String s) {
        for (int i = 0; i < args.size(); i++) {
            if (shown.get(i) != null && !args.get(i).isEmpty()) {
                s = s.replace(args.get(i), shown.get(i));
            }
        }
        return s.length() <= 2000 ? s : "…" + s.substring(s.length() - 2000);
    }

    /** SIGKILL to the child and its descendants, then a bounded wait for them to exit. */
    static void kill(Process p) {
        List<ProcessHandle> all = new ArrayList<>(p.descendants().toList());
        all.forEach(ProcessHandle::destroyForcibly);
        p.destroyForcibly();
        all.add(p.toHandle());
        long end = System.nanoTime() + KILL_WAIT.toNanos();
        for (ProcessHandle h : all) {
            try {
                h.onExit().get(Math.max(0, end - System.nanoTime()), TimeUnit.NANOSECONDS);
            } catch (InterruptedException e) {
                Thread.currentThread().interrupt();
                return;
            } catch (java.util.concurrent.ExecutionException | java.util.concurrent.TimeoutException e) {
                // gone or unreapable (a zombie of another parent): nothing more to do
            }
        }
    }

    /**
     * What a finished command printed and how it exited.
     *
     * @param truncated whether either stream was longer than the output limit
     */
    public record Result(int exitCode, String stdout, String stderr, boolean truncated) {}

    /** A started long-running child. */
    public static final class Running implements AutoCloseable {
        private final Process process;
        private final String commandLine;
        private final Path log;

        Running(Process process, String commandLine, Path log) {
            this.process = process;
            this.commandLine = commandLine;
            this.log = log;
        }

        /** The underlying process (for pid, waitFor, exit value). */
        public Process process() {
            return process;
        }

        public boolean isAlive() {
            return process.isAlive();
        }

        public long pid() {
            return process.pid();
        }

        /** The exit code if it has exited. */
        public Optional<Integer> exitCode() {
            return process.isAlive() ? Optional.empty() : Optional.of(process.exitValue());
        }

        /** The log file its output is appended to. */
        public Path log() {
            return log;
        }

        /**
         * Stops the child: SIGTERM, then SIGKILL (also to its descendants) if it has not exited within
         * {@code grace}. Returns once it has exited or a further bounded wait passed; keeps the interrupt
         * flag if interrupted (the child is killed then).
         */
        public void stop(Duration grace) {
            if (!process.isAlive()) {
                return;
            }
            process.destroy();
            try {
                if (!process.waitFor(grace.toNanos(), TimeUnit.NANOSECONDS)) {
                    kill(process);
                }
            } catch (InterruptedException e) {
                Thread.currentThread().interrupt();
                kill(process);
            }
        }

        /** {@link #stop(Duration)} with a 30 s grace. */
        @Override
        public void close() {
            stop(Duration.ofSeconds(30));
        }

        @Override
        public String toString() {
            return commandLine + " (pid " + process.pid() + ")";
        }
    }

    /** Reads a stream to its end on a daemon thread, keeping the first {@code limit} bytes. */
    private static final class Drain {
        private final Thread thread;
        private final ByteArrayOutputStream kept = new ByteArrayOutputStream();
        private boolean truncated;

        private Drain(InputStream in, int limit, String name) {
            this.thread = new Thread(() -> pump(in, limit), name);
            thread.setDaemon(true);
        }

        static Drain start(InputStream in, int limit, String name) {
            Drain d = new Drain(in, limit, name);
            d.thread.start();
            return d;
        }

        private void pump(InputStream in, int limit) {
            byte[] chunk = new byte[8192];
            try (in) {
                int n;
                while ((n = in.read(chunk)) >= 0) {
                    synchronized (this) {
                        int room = limit - kept.size();
                        if (room > 0) {
                            kept.write(chunk, 0, Math.min(room, n));
                        }
                        if (n > room) {
                            truncated = true;
                        }
                    }
                }
            } catch (IOException e) {
                // the stream closed under us (the child was killed): keep what was read
            }
        }

        void join(Duration max) throws InterruptedException {
            thread.join(max.toMillis());
        }

        synchronized String text() {
            return kept.toString(StandardCharsets.UTF_8);
        }

        synchronized boolean truncated() {
            return truncated;
        }
    }
}
