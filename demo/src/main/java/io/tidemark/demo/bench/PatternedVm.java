package io.tidemark.demo.bench;

import io.tidemark.testkit.qemu.QemuVm;
import java.time.Duration;
import java.time.Instant;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Map;
import java.util.Random;
import java.util.concurrent.TimeUnit;
import java.util.concurrent.locks.LockSupport;
import java.util.concurrent.locks.ReentrantLock;
import java.util.function.Consumer;

/**
 * A QEMU VM whose disks a writer thread fills with seeded patterns (64 KiB at a random 4 KiB-aligned
 * offset every 0.7–2 s), and the model of every state they went through ({@link SoakModel}), so a
 * restored point can be judged against the disk at its snapshot moment. The soak and the topology
 * run both drive their VMs through it.
 */
final class PatternedVm {
    static final int WRITE_BYTES = 64 << 10;

    final QemuVm qemu;
    final SoakModel model;
    /** Held for each write; a fault that must not split a write (a SIGSTOP) takes it too. */
    final ReentrantLock writes = new ReentrantLock();

    private final Random rnd;
    private final Consumer<String> failures;
    private volatile boolean writing;
    private volatile long writesDone;
    private Thread writer;

    /**
     * @param failures told once, when a write fails (the writer then stops)
     */
    PatternedVm(QemuVm qemu, long seed, Consumer<String> failures) {
        this.qemu = qemu;
        this.rnd = new Random(seed);
        this.failures = failures;
        this.model = new SoakModel(shas(qemu));
    }

    String name() {
        return qemu.name();
    }

    long writesDone() {
        return writesDone;
    }

    /** Starts the writer thread ({@code threadPrefix-<vm>}, a daemon). */
    void startWriting(String threadPrefix) {
        writing = true;
        writer = new Thread(this::writeLoop, threadPrefix + "-" + name());
        writer.setDaemon(true);
        writer.start();
    }

    /** Asks the writer to stop after its current write; {@link #awaitStopped} waits for it. */
    void stopWriting() {
        writing = false;
    }

    /** Waits up to {@code limit} for the writer to end (after {@link #stopWriting}). */
    void awaitStopped(Duration limit) {
        if (writer == null) {
            return;
        }
        try {
            writer.join(limit.toMillis());
        } catch (InterruptedException e) {
            Thread.currentThread().interrupt();
            throw new IllegalStateException(e);
        }
    }

    private void writeLoop() {
        while (writing) {
            LockSupport.parkNanos(TimeUnit.MILLISECONDS.toNanos(700 + rnd.nextInt(1300)));
            writes.lock();
            try {
                if (!writing) {
                    return;
                }
                List<String> disks = qemu.diskIds();
                String disk = disks.get(rnd.nextInt(disks.size()));
                long size = qemu.model(disk).size();
                long offset = (long) rnd.nextInt((int) ((size - WRITE_BYTES) / 4096)) * 4096;
                int pattern = 1 + rnd.nextInt(255);
                Instant issued = Instant.now();
                qemu.write(disk, offset, WRITE_BYTES, pattern);
                Instant acked = Instant.now();
                model.add(issued, acked, shas(qemu));
                writesDone++;
            } catch (RuntimeException e) {
                failures.accept("the writer of " + name() + " failed: " + e.getMessage());
                return;
            } finally {
                writes.unlock();
            }
        }
    }

    /** The SHA-256 of each disk's expected content, by disk id. */
    private static Map<String, String> shas(QemuVm vm) {
        Map<String, String> out = new LinkedHashMap<>();
        for (String d : vm.diskIds()) {
            out.put(d, vm.model(d).sha256());
        }
        return out;
    }
}
