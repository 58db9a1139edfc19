package io.tidemark.workers;

import io.tidemark.core.event.FullReason;
import io.tidemark.core.hypervisor.Capture;
import io.tidemark.core.hypervisor.CaptureRequest;
import io.tidemark.core.hypervisor.DiskExport;
import io.tidemark.core.hypervisor.DiskInfo;
import io.tidemark.core.hypervisor.Hypervisor;
import io.tidemark.core.hypervisor.VmInfo;
import io.tidemark.core.hypervisor.VmNotFoundException;
import io.tidemark.workers.nbd.Extent;
import java.nio.file.Path;
import java.time.Clock;
import java.time.Instant;
import java.util.ArrayList;
import java.util.BitSet;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Map;
import java.util.Optional;
import java.util.concurrent.CompletableFuture;

/**
 * An in-memory hypervisor with QEMU's bitmap semantics (64 KiB granularity, disable/add at the
 * capture instant, merge back on failure) for fast tests of the backup pipeline. The real thing is
 * tested against QEMU in the integration tests.
 */
final class FakeHypervisor implements Hypervisor {

    static final int GRANULARITY = 64 * 1024;

    private final Clock clock;
    private final Map<String, Map<String, byte[]>> disks = new LinkedHashMap<>();
    /** vm → checkpoint → dirty granules (all disks of a VM share checkpoint names; keyed disk/granule). */
    private final Map<String, Map<String, Map<String, BitSet>>> bitmaps = new LinkedHashMap<>();

    private final Map<String, Boolean> enabled = new LinkedHashMap<>();
    private final Map<String, Snapshot> exports = new LinkedHashMap<>();

    record Snapshot(byte[] bytes, Optional<BitSet> dirty) {}

    /** When set, every capture's snapshot counts as given up (its reads still work): the reason. */
    private volatile String lostSnapshots;

    FakeHypervisor(Clock clock) {
        this.clock = clock;
    }

    synchronized void addVm(String vm, Map<String, Integer> diskSizes) {
        Map<String, byte[]> d = new LinkedHashMap<>();
        diskSizes.forEach((name, size) -> d.put(name, new byte[size]));
        disks.put(vm, d);
        bitmaps.put(vm, new LinkedHashMap<>());
    }

    synchronized void write(String vm, String disk, int offset, byte[] data) {
        System.arraycopy(data, 0, disks.get(vm).get(disk), offset, data.length);
        bitmaps.get(vm).forEach((name, perDisk) -> {
            if (enabled.getOrDefault(vm + "/" + name, false)) {
                perDisk.get(disk).set(offset / GRANULARITY, (offset + data.length - 1) / GRANULARITY + 1);
            }
        });
    }

    synchronized byte[] content(String vm, String disk) {
        return disks.get(vm).get(disk).clone();
    }

    synchronized List<String> checkpoints(String vm) {
        return List.copyOf(bitmaps.get(vm).keySet());
    }

    /** From now on captures report their snapshot given up with {@code reason}; null = intact again. */
    void loseSnapshots(String reason) {
        lostSnapshots = reason;
    }

    synchronized void dropCheckpoints(String vm) {
        bitmaps.get(vm).clear();
    }

    @Override
    public synchronized List<VmInfo> list() {
        List<VmInfo> out = new ArrayList<>();
        disks.forEach((vm, d) -> out.add(new VmInfo(
                vm,
                d.entrySet().stream()
                        .map(e -> new DiskInfo(e.getKey(), e.getKey(), e.getValue().length))
                        .toList())));
        return out;
    }

    @Override
    public synchronized Capture capture(CaptureRequest request) {
        String vm = request.vm();
        if (!disks.containsKey(vm)) {
            throw new VmNotFoundException("no VM " + vm);
        }
        Map<String, Map<String, BitSet>> vmBitmaps = bitmaps.get(vm);
        Optional<String> since = request.sinceCheckpoint().filter(vmBitmaps::containsKey);
        Map<String, BitSet> fresh = new LinkedHashMap<>();
        List<DiskExport> out = new ArrayList<>();
        for (var e : disks.get(vm).entrySet()) {
            String disk = e.getKey();
            fresh.put(disk, new BitSet());
            Optional<BitSet> dirty =
                    since.map(s -> (BitSet) vmBitmaps.get(s).get(disk).clone());
            String exportName = vm + "/" + disk;
            exports.put(exportName, new Snapshot(e.getValue().clone(), dirty));
            out.add(new DiskExport(
                    disk,
                    e.getValue().length,
                    Path.of("fake.sock"),
                    exportName,
                    since.map(s -> "qemu:dirty-bitmap:" + s),
                    since.isPresent()
                            ? Optional.empty()
                            : Optional.of(FullReason.of(FullReason.Kind.FIRST_BACKUP, "first backup")),
                    Optional.empty()));
        }
        since.ifPresent(s -> enabled.put(vm + "/" + s, false));
        vmBitmaps.put(request.newCheckpoint(), fresh);
        enabled.put(vm + "/" + request.newCheckpoint(), true);
        Instant at = clock.instant();
        return new Capture() {
            private boolean committed;

            @Override
            public Instant capturedAt() {
                return at;
            }

            @Override
            public List<DiskExport> disks() {
                return out;
            }

            @Override
            public void verifyIntact() {
                String reason = lostSnapshots;
                if (reason != null) {
                    throw new io.tidemark.core.RetriableException(reason);
                }
            }

            @Override
            public void commit() {
                synchronized (FakeHypervisor.this) {
                    since.ifPresent(vmBitmaps::remove);
                    committed = true;
                }
            }

            @Override
            public void close() {
                synchronized (FakeHypervisor.this) {
                    if (!committed) {
                        Map<String, BitSet> next = vmBitmaps.remove(request.newCheckpoint());
                        since.ifPresent(s -> {
                            vmBitmaps.get(s).forEach((disk, bits) -> bits.or(next.get(disk)));
                            enabled.put(vm + "/" + s, true);
                        });
                    }
                }
            }
        };
    }

    /** Opens the in-memory export of a capture. */
    BlockSource open(DiskExport export) {
        Snapshot s;
        synchronized (this) {
            s = exports.get(export.exportName());
        }
        return new BlockSource() {
            @Override
            public long size() {
                return s.bytes().length;
            }

            @Override
            public List<Extent> extents(String context, long offset, long length) {
                List<Extent> out = new ArrayList<>();
                for (long o = offset; o < offset + length; o += GRANULARITY) {
                    int g = (int) (o / GRANULARITY);
                    int flags;
                    if (context.equals(ALLOCATION)) {
                        boolean zero = true;
                        for (int i = 0; i < GRANULARITY && zero; i++) {
                            zero = s.bytes()[g * GRANULARITY + i] == 0;
                        }
                        flags = zero ? Extent.HOLE | Extent.ZERO : 0;
                    } else {
                        flags = s.dirty().orElseThrow().get(g) ? Extent.DIRTY : 0;
                    }
                    out.add(new Extent(o, GRANULARITY, flags));
                }
                return out;
            }

            @Override
            public CompletableFuture<byte[]> read(long offset, int length) {
                byte[] b = new byte[length];
                System.arraycopy(s.bytes(), (int) offset, b, 0, length);
                return CompletableFuture.completedFuture(b);
            }

            @Override
            public void close() {}
        };
    }

    @Override
    public void close() {}
}
