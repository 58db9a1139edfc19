package io.tidemark.testkit;

import java.io.ByteArrayOutputStream;
import java.io.OutputStream;
import java.io.PrintStream;
import java.nio.charset.StandardCharsets;
import org.junit.jupiter.api.extension.AfterEachCallback;
import org.junit.jupiter.api.extension.BeforeEachCallback;
import org.junit.jupiter.api.extension.ExtensionContext;

/**
 * Captures what the CLI prints during one test: register with {@code @RegisterExtension}, then read
 * {@link #out()} and {@link #err()}. {@link #reset()} starts afresh between commands of one test.
 *
 * <p>{@code new StdStreams()} captures what is printed while the test runs from any thread that no
 * other running test owns. {@link #perThread()} captures only what the test's own thread, and the
 * threads it starts, print: for test classes whose tests run concurrently ({@code
 * @Execution(CONCURRENT)}), where each test must see its own command's output.
 *
 * <p>A concurrent class also runs beside the other classes of its module, so both kinds capture
 * through one router installed on {@code System.out} and {@code System.err} while any capture is
 * active: a thread that belongs to a running per-thread test (it or an ancestor ran that test's
 * code) writes to that test's capture; any other thread writes to the running whole-process
 * capture, if there is one, else to the real stream. (Replacing {@code System.out} per test, as
 * this class once did for whole-process captures, took a concurrent class's output away from it.)
 */
public final class StdStreams implements BeforeEachCallback, AfterEachCallback {

    /** The per-thread capture of the running test, inherited by the threads it starts. */
    private static final InheritableThreadLocal<StdStreams> OWNER = new InheritableThreadLocal<>();

    private static int active;
    private static volatile PrintStream realOut;
    private static volatile PrintStream realErr;
    /** The running whole-process capture, if any. */
    private static volatile StdStreams everyThread;

    private final ByteArrayOutputStream out = new ByteArrayOutputStream();
    private final ByteArrayOutputStream err = new ByteArrayOutputStream();
    private final boolean perThread;
    private volatile boolean running;

    public StdStreams() {
        this(false);
    }

    private StdStreams(boolean perThread) {
        this.perThread = perThread;
    }

    /** Captures only what the test's thread, and threads it starts, print (tests running concurrently). */
    public static StdStreams perThread() {
        return new StdStreams(true);
    }

    @Override
    public void beforeEach(ExtensionContext context) {
        synchronized (StdStreams.class) {
            if (active++ == 0) {
                realOut = System.out;
                realErr = System.err;
                System.setOut(new PrintStream(new Routed(true), true, StandardCharsets.UTF_8));
                System.setErr(new PrintStream(new Routed(false), true, StandardCharsets.UTF_8));
            }
            running = true;
            if (!perThread) {
                everyThread = this;
            }
        }
        // a whole-process test's thread (and those it starts) must not carry another test's ownership
        OWNER.set(perThread ? this : null);
    }

    @Override
    public void afterEach(ExtensionContext context) {
        OWNER.remove();
        synchronized (StdStreams.class) {
            running = false;
            if (everyThread == this) {
                everyThread = null;
            }
            if (--active == 0) {
                System.setOut(realOut);
                System.setErr(realErr);
            }
        }
    }

    public String out() {
        return out.toString(StandardCharsets.UTF_8);
    }

    public String err() {
        return err.toString(StandardCharsets.UTF_8);
    }

    public void reset() {
        out.reset();
        err.reset();
    }

    /** Writes to the capture the writing thread belongs to (see the class comment). */
    private static final class Routed extends OutputStream {
        private final boolean stdout;

        Routed(boolean stdout) {
            this.stdout = stdout;
        }

        private OutputStream target() {
            StdStreams owner = OWNER.get();
            if (owner == null || !owner.running) {
                owner = everyThread;
            }
            if (owner == null) {
                return stdout ? realOut : realErr;
            }
            return stdout ? owner.out : owner.err;
        }

        @Override
        public void write(int b) throws java.io.IOException {
            target().write(b);
        }

        @Override
        public void write(byte[] b, int off, int len) throws java.io.IOException {
            target().write(b, off, len);
        }

        @Override
        public void flush() {
            realOut.flush();
            realErr.flush();
        }
    }
}
