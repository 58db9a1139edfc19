package io.tidemark.workers.qmp;

import io.tidemark.core.TidemarkException;
import io.tidemark.core.event.FullReason;
import io.tidemark.core.hypervisor.ChangedRange;
import io.tidemark.workers.nbd.Extent;
import io.tidemark.workers.rbd.RbdChangeTracker;
import io.tidemark.workers.rbd.RbdDisk;
import java.time.Duration;
import java.util.ArrayList;
import java.util.HashMap;
import java.util.List;
import java.util.Map;
import java.util.Optional;
import org.slf4j.Logger;
import org.slf4j.LoggerFactory;

/**
 * The RBD side of one capture (ADR 18): for each disk on RBD, Tidemark's snapshots of its image
 * named like the checkpoints. The base snapshot of the new checkpoint is taken just before the
 * capture's transaction; when a disk's bitmap cannot be used and the previous checkpoint's snapshot
 * exists, the disk's changes come from the snapshot diff instead of a full read. After a commit the
 * previous snapshot is removed, otherwise the new one; leftovers of interrupted captures are removed
 * when the next capture opens.
 */
final class RbdCheckpoints {

    private static final Logger log = LoggerFactory.getLogger(RbdCheckpoints.class);
    private static final Duration RBD_TIMEOUT = Duration.ofSeconds(60);
    static final String END_SUFFIX = "-end";

    private record Tracked(int index, RbdDisk disk, RbdChangeTracker tracker, boolean baseExists) {}

    private final String vm;
    private final Optional<String> since;
    private final String newCheckpoint;
    private final List<Tracked> tracked;
    private final List<Tracked> taken = new ArrayList<>();
    private final Map<Integer, String> notes = new HashMap<>();

    private RbdCheckpoints(String vm, Optional<String> since, String newCheckpoint, List<Tracked> tracked) {
        this.vm = vm;
        this.since = since;
        this.newCheckpoint = newCheckpoint;
        this.tracked = List.copyOf(tracked);
    }

    /** Removes our leftover snapshots (prefix {@code prefix}, except {@code since}) of every RBD disk. */
    static RbdCheckpoints open(
            String vm, List<CapturePlan.Disk> disks, Optional<String> since, String newCheckpoint, String prefix) {
        List<Tracked> tracked = new ArrayList<>();
        for (int i = 0; i < disks.size(); i++) {
            Optional<RbdDisk> rbd = disks.get(i).device().rbd();
            if (rbd.isEmpty()) {
                continue;
            }
            RbdChangeTracker tracker = rbd.get().tracker(RBD_TIMEOUT);
            try {
                List<String> removed = tracker.reconcile(rbd.get().image(), prefix, since);
                if (!removed.isEmpty()) {
                    log.info(
                            "VM {}: removed leftover RBD snapshots of {}: {}",
                            vm,
                            rbd.get().image(),
                            removed);
                }
                boolean base = since.isPresent()
                        && tracker.snapshots(rbd.get().image()).contains(since.get());
                tracked.add(new Tracked(i, rbd.get(), tracker, base));
            } catch (TidemarkException e) {
                // the bitmap still tracks this disk while QEMU runs; only a restart would cost a full read
                log.warn(
                        "VM {}: disk {} is on RBD image {} but its snapshots cannot be managed, so after a QEMU"
                                + " restart its next backup is full: {}",
                        vm,
                        disks.get(i).device().disk(),
                        rbd.get().image(),
                        e.getMessage());
            }
        }
        return new RbdCheckpoints(vm, since, newCheckpoint, tracked);
    }

    /** Whether disk {@code i}, whose bitmap cannot be used, gets its changes from the RBD diff. */
    boolean diffs(int i, CapturePlan.Disk disk) {
        return !disk.incremental() && find(i).filter(Tracked::baseExists).isPresent();
    }

    /** The full reason of disk {@code i}, saying so when the disk is on RBD and its base snapshot is gone. */
    Optional<FullReason> fullReason(int i, Optional<FullReason> reason) {
        Optional<Tracked> t = find(i);
        if (reason.isEmpty() || t.isEmpty() || since.isEmpty()) {
            return reason;
        }
        FullReason r = reason.get();
        if (notes.containsKey(i)) {
            return Optional.of(FullReason.of(r.kind(), r.detail() + "; " + notes.get(i)));
        }
        if (t.get().baseExists()) {
            return reason;
        }
        return Optional.of(FullReason.of(
                r.kind(),
                r.detail() + "; RBD snapshot " + t.get().disk().image().spec(since.get())
                        + " is gone too (removed outside Tidemark, or the image was replaced)"));
    }

    /** Takes the new checkpoint's snapshot of every RBD disk: call just before the transaction. */
    void takeBase() {
        for (Tracked t : tracked) {
            try {
                t.tracker().createSnapshot(t.disk().image(), newCheckpoint);
                taken.add(t);
            } catch (TidemarkException e) { // no base: after a restart the next backup of it is full
                log.warn(
                        "VM {}: cannot take RBD snapshot {}; after a QEMU restart the next backup of this disk is"
                                + " full: {}",
                        vm,
                        t.disk().image().spec(newCheckpoint),
                        e.getMessage());
            }
        }
    }

    /**
     * The ranges of disk {@code i} changed since {@code since}, up to an end snapshot taken now
     * (after the transaction, so it holds every write before it), or empty when the base snapshot
     * vanished meanwhile.
     */
    Optional<List<ChangedRange>> changes(int i) {
        Tracked t = find(i).orElseThrow();
        String end = newCheckpoint + END_SUFFIX;
        try {
            t.tracker().createSnapshot(t.disk().image(), end);
        } catch (TidemarkException e) {
            notes.put(i, "the RBD diff failed: " + e.getMessage());
            return Optional.empty();
        }
        try {
            return t.tracker()
                    .changes(t.disk().image(), since.orElseThrow(), end)
                    .map(c -> {
                        log.info(
                                "VM {}: {} changed {} bytes since {} ({})",
                                vm,
                                t.disk().image(),
                                c.bytes(),
                                since.get(),
                                c.wholeObjects() ? "whole objects, fast-diff" : "written ranges");
                        return c.extents().stream()
                                .map((Extent e) -> new ChangedRange(e.offset(), e.length()))
                                .toList();
                    });
        } catch (TidemarkException e) {
            notes.put(i, "the RBD diff failed: " + e.getMessage());
            return Optional.empty();
        } finally {
            remove(t, end);
        }
    }

    /** After a commit: removes the previous snapshots; otherwise the new ones (the previous stay the base). */
    void settle(boolean committed) {
        if (committed) {
            if (since.isPresent()) {
                for (Tracked t : tracked) {
                    remove(t, since.get());
                }
            }
        } else {
            for (Tracked t : taken) {
                remove(t, newCheckpoint);
            }
        }
    }

    /** Removes a snapshot; one that cannot be removed now is a leftover the next capture removes. */
    private void remove(Tracked t, String snapshot) {
        try {
            t.tracker().deleteSnapshot(t.disk().image(), snapshot);
        } catch (TidemarkException e) {
            log.warn(
                    "VM {}: cannot remove RBD snapshot {} now; the next capture removes it: {}",
                    vm,
                    t.disk().image().spec(snapshot),
                    e.getMessage());
        }
    }

    private Optional<Tracked> find(int i) {
        return tracked.stream().filter(t -> t.index() == i).findFirst();
    }
}
