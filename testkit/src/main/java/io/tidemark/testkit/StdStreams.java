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
 * <p>{@code new StdStreams()} captures everything printed while the test runs, from any thread.
 * {@link #perThread()} captures only what the test's own thread, and the threads it starts, print:
 * for test classes whose tests run concurrently ({@code @Execution(CONCURRENT)}), where each test
 * must see its own command's output.
 */
public final class StdStreams implements BeforeEachCallback, AfterEachCallback {

    /** The capture of the running test, inherited by the threads it starts (per-thread mode). */
    private static final InheritableThreadLocal<StdStreams> OWNER = new InheritableThreadLocal<>();

    private static int routing;
    private static PrintStream realOut;
    private static PrintStream realErr;

    private final ByteArrayOutputStream out = new ByteArrayOutputStream();
    private final ByteArrayOutputStream err = new ByteArrayOutputStream();
    private final boolean perThread;
    private PrintStream oldOut;
    private PrintStream oldErr;

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
        if (perThread) {
            synchronized (StdStreams.class) {
                if (routing++ == 0) {
                    realOut = System.out;
                    realErr = System.err;
                    System.setOut(new PrintStream(new Routed(realOut, true), true, StandardCharsets.UTF_8));
                    System.setErr(new PrintStream(new Routed(realErr, false), true, StandardCharsets.UTF_8));
                }
            }
            OWNER.set(this);
            return;
        }
        oldOut = System.out;
        oldErr = System.err;
        System.setOut(new PrintStream(out, true, StandardCharsets.UTF_8));
        System.setErr(new PrintStream(err, true, StandardCharsets.UTF_8));
    }

    @Override
    public void afterEach(ExtensionContext context) {
        if (perThread) {
            OWNER.remove();
            synchronized (StdStreams.class) {
                if (--routing == 0) {
                    System.setOut(realOut);
                    System.setErr(realErr);
                }
            }
            return;
        }
        System.setOut(oldOut);
        System.setErr(oldErr);
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

    /** Writes to the capture of the writing thread's test, or to the real stream outside any test. */
    private static final class Routed extends OutputStream {
        private final PrintStream real;
        private final boolean stdout;

        Routed(PrintStream real, boolean stdout) {
            this.real = real;
            this.stdout = stdout;
        }

        private ByteArrayOutputStream capture() {
            StdStreams owner = OWNER.get();
            if (owner == null) {
                return null;
            }
            return stdout ? owner.out : owner.err;
        }

        @Override
        public void write(int b) {
            ByteArrayOutputStream c = capture();
            if (c == null) {
                real.write(b);
            } else {
                c.write(b);
            }
        }

        @Override
        public void write(byte[] b, int off, int len) {
            ByteArrayOutputStream c = capture();
            if (c == null) {
                real.write(b, off, len);
            } else {
                c.write(b, off, len);
            }
        }

        @Override
        public void flush() {
            real.flush();
        }
    }
}
