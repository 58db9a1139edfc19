package io.tidemark.workers;

import com.sun.jna.LastErrorException;
import com.sun.jna.Library;
import com.sun.jna.Native;
import java.io.IOException;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.OptionalInt;
import java.util.concurrent.atomic.AtomicBoolean;
import org.slf4j.Logger;
import org.slf4j.LoggerFactory;

/**
 * The Linux nice value of the calling thread: a backup's reading, hashing and compressing threads
 * lower theirs so that, when the host's CPUs are contended, the VMs' own threads (QEMU's vCPUs and
 * the I/O loop that serves the guest's writes and the copy-before-write) run first (docs/design.md
 * §5.1.2).
 *
 * <p>On Linux the nice value belongs to a thread, not to the process, and a thread inherits its
 * creator's: so a job's thread that lowers itself before it opens its NBD connection lowers the
 * connection's reader thread too, and a pool's threads lower themselves as they start ({@link
 * #lowering}). A thread only ever lowers itself: raising a nice value back needs {@code
 * CAP_SYS_NICE}, so a lowered thread is never handed to other work. Java has no binding for this
 * ({@code Thread.setPriority} is ignored on Linux), so it calls {@code setpriority(2)} through JNA
 * with the thread's id from {@code /proc/thread-self}. Where that is not possible (not Linux, no
 * JNA) the backup runs at the normal priority and says so once.
 */
public final class Niceness {

    /** The least and most nice values {@code setpriority} accepts. */
    public static final int MIN = 0;

    public static final int MAX = 19;

    private static final Logger log = LoggerFactory.getLogger(Niceness.class);
    private static final int PRIO_PROCESS = 0;
    private static final AtomicBoolean WARNED = new AtomicBoolean();

    /** The libc call, errno through {@link LastErrorException}. */
    private interface LibC extends Library {
        LibC LIB = Native.load("c", LibC.class);

        int setpriority(int which, int who, int prio) throws LastErrorException;
    }

    private Niceness() {}

    /**
     * Lowers the calling thread's priority to {@code nice} (0–19) unless it is already that low; 0
     * does nothing.
     *
     * @return whether the thread now runs at {@code nice} or lower
     */
    public static boolean lowerCurrentThread(int nice) {
        if (nice < MIN || nice > MAX) {
            throw new IllegalArgumentException("a nice value is between 0 and 19, not " + nice);
        }
        if (nice == 0) {
            return true;
        }
        OptionalInt tid = currentThreadId();
        OptionalInt now = tid.isPresent() ? of(tid.getAsInt()) : OptionalInt.empty();
        if (now.isEmpty()) {
            warnOnce("this system has no /proc/thread-self (not Linux?)");
            return false;
        }
        if (now.getAsInt() >= nice) {
            return true;
        }
        try {
            LibC.LIB.setpriority(PRIO_PROCESS, tid.getAsInt(), nice);
            return true;
        } catch (LastErrorException | LinkageError e) {
            warnOnce("setpriority failed: " + e.getMessage());
            return false;
        }
    }

    /**
     * The nice value of thread {@code tid} of this process, from {@code /proc/self/task/<tid>/stat}
     * (field 19); empty where there is no such file.
     */
    public static OptionalInt of(int tid) {
        try {
            String stat = Files.readString(Path.of("/proc/self/task/" + tid + "/stat"));
            // the command name (field 2) is in parentheses and may hold spaces: count from after it
            String[] rest = stat.substring(stat.lastIndexOf(')') + 2).split(" ");
            return OptionalInt.of(Integer.parseInt(rest[19 - 3]));
        } catch (IOException | RuntimeException e) {
            return OptionalInt.empty();
        }
    }

    /** The kernel's id of the calling thread, from {@code /proc/thread-self} ({@code <pid>/task/<tid>}). */
    public static OptionalInt currentThreadId() {
        try {
            Path link = Files.readSymbolicLink(Path.of("/proc/thread-self"));
            return OptionalInt.of(Integer.parseInt(link.getFileName().toString()));
        } catch (IOException | RuntimeException e) {
            return OptionalInt.empty();
        }
    }

    /** {@code task}, run by a thread that first lowers itself to {@code nice} (for a pool's factory). */
    public static Runnable lowering(int nice, Runnable task) {
        if (nice < MIN || nice > MAX) {
            throw new IllegalArgumentException("a nice value is between 0 and 19, not " + nice);
        }
        return () -> {
            lowerCurrentThread(nice);
            task.run();
        };
    }

    private static void warnOnce(String why) {
        if (WARNED.compareAndSet(false, true)) {
            log.warn(
                    "backups run at the normal CPU priority, beside the VMs' own threads ({}); set worker.backupNice:"
                            + " 0 to silence this",
                    why);
        }
    }
}
