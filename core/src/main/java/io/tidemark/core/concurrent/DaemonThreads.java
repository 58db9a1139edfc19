package io.tidemark.core.concurrent;

import java.util.concurrent.ThreadFactory;
import java.util.concurrent.atomic.AtomicInteger;

/**
 * Thread factories for the engine's background work (probes, watchdogs, refreshes): daemon threads,
 * so a stuck call never keeps the JVM from exiting, named so a thread dump says what each one does.
 */
public final class DaemonThreads {

    private DaemonThreads() {}

    /** A factory of daemon threads all named {@code name}. */
    public static ThreadFactory named(String name) {
        return r -> {
            Thread t = new Thread(r, name);
            t.setDaemon(true);
            return t;
        };
    }

    /** A factory of daemon threads named {@code prefix} followed by 1, 2, 3, ... in creation order. */
    public static ThreadFactory numbered(String prefix) {
        AtomicInteger n = new AtomicInteger();
        return r -> {
            Thread t = new Thread(r, prefix + n.incrementAndGet());
            t.setDaemon(true);
            return t;
        };
    }
}
