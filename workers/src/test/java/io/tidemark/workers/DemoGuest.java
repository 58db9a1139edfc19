package io.tidemark.workers;

import io.tidemark.core.event.ConsistencyAchieved;
import io.tidemark.format.Digest;
import io.tidemark.testkit.qemu.QemuVm;
import java.time.Instant;
import java.util.BitSet;
import java.util.LinkedHashMap;
import java.util.Map;
import java.util.Random;
import java.util.concurrent.ConcurrentHashMap;
import java.util.concurrent.locks.ReentrantLock;

/**
 * The demo's (and the end-to-end test's) "guest": writes known patterns into a running QEMU VM
 * through the guest's own disk device, keeps an independent shadow of every disk, and records the
 * SHA-256 of each disk at every snapshot moment. Acting as the capture's freeze hook, it holds its
 * writes while the capture transaction runs (what the guest agent's fsfreeze does for a real guest);
 * right after each capture it writes more, so every export is read while the guest keeps writing.
 */
public final class DemoGuest implements CaptureHooks {

    public static final int GRANULE = 64 * 1024;

    private final QemuVm vm;
    private final Map<String, byte[]> shadow = new LinkedHashMap<>();
    private final Map<String, BitSet> dirtySinceCapture = new LinkedHashMap<>();
    private final ReentrantLock writes = new ReentrantLock();
    private final Random random;
    private final Map<Instant, Moment> moments = new ConcurrentHashMap<>();
    private Moment pending;

    /** What the disks held at one snapshot moment, and what had changed since the previous one. */
    public record Moment(Map<String, String> sha256, Map<String, BitSet> dirtyGranules) {}

    public DemoGuest(QemuVm vm, Map<String, Long> diskSizes, long seed) {
        this.vm = vm;
        this.random = new Random(seed);
        diskSizes.forEach((disk, size) -> {
            shadow.put(disk, new byte[Math.toIntExact(size)]);
            dirtySinceCapture.put(disk, new BitSet());
        });
    }

    /** Writes {@code length} bytes of {@code pattern} at {@code offset} of {@code disk}, in QEMU and in the shadow. */
    public void write(String disk, long offset, int length, int pattern) {
        writes.lock();
        try {
            vm.write(disk, offset, length, pattern);
            byte[] b = shadow.get(disk);
            java.util.Arrays.fill(b, (int) offset, (int) offset + length, (byte) pattern);
            dirtySinceCapture.get(disk).set((int) (offset / GRANULE), (int) ((offset + length - 1) / GRANULE) + 1);
        } finally {
            writes.unlock();
        }
    }

    /** A burst of {@code count} scattered writes of 4–64 KiB on every disk. */
    public void scatter(int count) {
        for (String disk : shadow.keySet()) {
            int size = shadow.get(disk).length;
            for (int i = 0; i < count; i++) {
                int length = 4096 * (1 + random.nextInt(16));
                long offset = (long) random.nextInt((size - length) / 4096) * 4096;
                write(disk, offset, length, 1 + random.nextInt(255));
            }
        }
    }

    @Override
    public ConsistencyAchieved freeze(String vmName) {
        writes.lock();
        Map<String, String> sha = new LinkedHashMap<>();
        Map<String, BitSet> dirty = new LinkedHashMap<>();
        shadow.forEach((disk, bytes) -> sha.put(disk, Digest.sha256(bytes).hex()));
        dirtySinceCapture.forEach((disk, bits) -> {
            BitSet d = (BitSet) bits.clone();
            if (pending != null) { // the previous capture failed: its changes belong to this one
                d.or(pending.dirtyGranules().get(disk));
            }
            dirty.put(disk, d);
            bits.clear();
        });
        pending = new Moment(sha, dirty);
        return ConsistencyAchieved.CRASH;
    }

    @Override
    public void thaw(String vmName) {
        writes.unlock();
    }

    @Override
    public void onCaptured(String vmName, Instant capturedAt) {
        moments.put(capturedAt, pending);
        pending = null;
        scatter(3); // the guest goes on writing while the export is read
    }

    /** The granules written after the capture at {@code after} up to the capture at {@code upTo}. */
    public Map<String, BitSet> dirtyBetween(Instant after, Instant upTo) {
        Map<String, BitSet> out = new LinkedHashMap<>();
        moments.forEach((at, m) -> {
            if (at.isAfter(after) && !at.isAfter(upTo)) {
                m.dirtyGranules().forEach((disk, bits) -> out.computeIfAbsent(disk, d -> new BitSet())
                        .or(bits));
            }
        });
        return out;
    }

    /** The disks' content at the capture that happened at {@code capturedAt}. */
    public Moment at(Instant capturedAt) {
        return moments.get(capturedAt);
    }
}
