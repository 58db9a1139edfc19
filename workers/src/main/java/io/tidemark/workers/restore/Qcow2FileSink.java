package io.tidemark.workers.restore;

import io.tidemark.core.PermanentException;
import io.tidemark.repository.BackgroundWriteback;
import io.tidemark.repository.DiskSink;
import io.tidemark.repository.PartialFile;
import java.nio.ByteBuffer;
import java.nio.file.Path;
import java.util.Arrays;
import java.util.concurrent.atomic.AtomicIntegerArray;
import java.util.concurrent.atomic.AtomicLong;
import java.util.concurrent.atomic.AtomicReferenceArray;

/**
 * A new qcow2 file (version 3, 64 KiB clusters, 16-bit refcounts: what {@code qemu-img create -f
 * qcow2} makes) written directly, without QEMU (ADR 23): data clusters are allocated in the order the
 * writes arrive and written with positional writes from the callers' threads, in parallel; the
 * tables that map them (L1, L2, refcounts) and the header are written once, at {@link #commit},
 * after the data. A cluster that a write would fill with zeros is not allocated, so holes and zero
 * runs stay unallocated and read as zeros.
 *
 * <p>Written as {@code FILE.partial}, flushed ({@code fsync}) and renamed on {@link #commit}; a failed
 * restore deletes it. Every {@link BackgroundWriteback#DEFAULT_EVERY_BYTES} written, a background
 * {@code fdatasync} writes back the data while the restore goes on.
 *
 * <p>Memory: one 4-byte entry per cluster of each 512 MiB of the disk that holds data (32 KiB per
 * such 512 MiB), created when the first write lands in it.
 */
public final class Qcow2FileSink implements DiskSink {

    static final int CLUSTER_BITS = 16;
    static final int CLUSTER = 1 << CLUSTER_BITS;
    private static final int L2_ENTRIES = CLUSTER / 8;
    private static final int REFCOUNT_ORDER = 4; // 16-bit refcounts
    private static final int REFCOUNTS_PER_BLOCK = CLUSTER * 8 / (1 << REFCOUNT_ORDER);
    private static final long COPIED = 1L << 63; // the cluster's refcount is exactly one
    private static final int HEADER_LENGTH = 104;
    private static final byte[] ZEROS = new byte[CLUSTER];

    private final Path out;
    private final long size;
    private final PartialFile file;
    /** Per L2 table (512 MiB of the disk): the host cluster of each guest cluster, 0 if none. */
    private final AtomicReferenceArray<AtomicIntegerArray> l2;
    /** The next free host cluster; cluster 0 holds the header. */
    private final AtomicLong nextCluster = new AtomicLong(1);

    private final Object partialClusters = new Object(); // allocates clusters that writes share

    private Qcow2FileSink(Path out, long size, PartialFile file) {
        this.out = out;
        this.size = size;
        this.file = file;
        this.l2 = new AtomicReferenceArray<>(l1Size(size));
    }

    /** A new qcow2 file {@code out} of virtual size {@code size}, written as {@code out.partial}. */
    public static Qcow2FileSink create(Path out, long size) {
        return create(out, size, BackgroundWriteback.DEFAULT_EVERY_BYTES);
    }

    static Qcow2FileSink create(Path out, long size, long writebackBytes) {
        if (size <= 0) {
            throw new PermanentException("cannot create " + out + ": a qcow2 image needs a positive size, got " + size);
        }
        return new Qcow2FileSink(out, size, PartialFile.create(out, 0, writebackBytes));
    }

    private static int l1Size(long size) {
        long perL2 = (long) L2_ENTRIES * CLUSTER;
        return (int) ((size + perL2 - 1) / perL2);
    }

    @Override
    public void write(long offset, byte[] data, int length) {
        if (offset < 0 || length < 0 || offset + length > size) {
            throw new IllegalArgumentException(
                    "write at " + offset + " of " + length + " bytes is outside " + out + " of " + size + " bytes");
        }
        int pos = 0;
        while (pos < length) {
            long at = offset + pos;
            int inCluster = (int) (at & (CLUSTER - 1));
            int n = Math.min(length - pos, CLUSTER - inCluster);
            boolean whole = inCluster == 0 && (n == CLUSTER || at + n == size);
            if (isZero(data, pos, n)) {
                pos += n; // a fresh image reads zeros there already
                continue;
            }
            if (!whole) { // another write may share this cluster
                writeAt(hostCluster(at >>> CLUSTER_BITS) * CLUSTER + inCluster, data, pos, n, at);
                pos += n;
                continue;
            }
            // a run of whole non-zero clusters that no other write can touch: contiguous on the host
            int run = n;
            while (pos + run < length) {
                int next = Math.min(length - pos - run, CLUSTER);
                boolean nextWhole = next == CLUSTER || at + run + next == size;
                if (!nextWhole || isZero(data, pos + run, next)) {
                    break;
                }
                run += next;
            }
            int clusters = (run + CLUSTER - 1) / CLUSTER;
            long host = nextCluster.getAndAdd(clusters);
            for (int c = 0; c < clusters; c++) {
                map((at >>> CLUSTER_BITS) + c, host + c);
            }
            writeAt(host * CLUSTER, data, pos, run, at);
            pos += run;
        }
        file.written(length);
    }

    private static boolean isZero(byte[] data, int from, int n) {
        for (int p = from; p < from + n; p += CLUSTER) {
            int k = Math.min(CLUSTER, from + n - p);
            if (Arrays.mismatch(data, p, p + k, ZEROS, 0, k) >= 0) {
                return false;
            }
        }
        return true;
    }

    private AtomicIntegerArray table(long guestCluster) {
        int i = (int) (guestCluster / L2_ENTRIES);
        AtomicIntegerArray t = l2.get(i);
        if (t == null) {
            l2.compareAndSet(i, null, new AtomicIntegerArray(L2_ENTRIES));
            t = l2.get(i);
        }
        return t;
    }

    private void map(long guestCluster, long host) {
        if (host > Integer.MAX_VALUE) {
            throw new PermanentException(
                    out + " would exceed " + ((long) Integer.MAX_VALUE * CLUSTER) + " bytes; restore it as raw");
        }
        table(guestCluster).set((int) (guestCluster % L2_ENTRIES), (int) host);
    }

    /** The host cluster of a guest cluster that several writes may share, allocated once. */
    private long hostCluster(long guestCluster) {
        AtomicIntegerArray t = table(guestCluster);
        int e = (int) (guestCluster % L2_ENTRIES);
        synchronized (partialClusters) {
            int host = t.get(e);
            if (host == 0) {
                long h = nextCluster.getAndIncrement();
                map(guestCluster, h);
                return h;
            }
            return host;
        }
    }

    private void writeAt(long hostOffset, byte[] data, int from, int n, long guestOffset) {
        file.writeAt(ByteBuffer.wrap(data, from, n), hostOffset, "(guest offset " + guestOffset + ")");
    }

    /** Background fsyncs completed so far. */
    long writebacks() {
        return file.writebacks();
    }

    @Override
    public void commit() {
        file.commit(this::writeMetadata);
    }

    /**
     * After the data: the L2 tables that hold entries, the L1 table, the refcount table and its
     * blocks (every cluster in use counted once), then the header in cluster 0.
     */
    private void writeMetadata() {
        int l1Size = l2.length();
        long cluster = nextCluster.get();
        long[] l1 = new long[l1Size];
        for (int i = 0; i < l1Size; i++) {
            AtomicIntegerArray t = l2.get(i);
            if (t == null) {
                continue;
            }
            ByteBuffer table = ByteBuffer.allocate(CLUSTER);
            for (int e = 0; e < L2_ENTRIES; e++) {
                int host = t.get(e);
                table.putLong(host == 0 ? 0 : ((long) host << CLUSTER_BITS) | COPIED);
            }
            l1[i] = (cluster << CLUSTER_BITS) | COPIED;
            writeAll(table.flip(), cluster << CLUSTER_BITS);
            cluster++;
        }
        long l1Offset = cluster << CLUSTER_BITS;
        ByteBuffer l1Table = ByteBuffer.allocate(l1Size * 8);
        for (long e : l1) {
            l1Table.putLong(e);
        }
        writeAll(l1Table.flip(), l1Offset);
        cluster += clustersFor(l1Size * 8L);

        // the refcount table and blocks count every cluster, themselves included
        long used = cluster;
        long blocks = 0;
        long tableClusters = 0;
        while (true) {
            long total = used + tableClusters + blocks;
            long b = (total + REFCOUNTS_PER_BLOCK - 1) / REFCOUNTS_PER_BLOCK;
            long t = clustersFor(b * 8);
            if (b == blocks && t == tableClusters) {
                break;
            }
            blocks = b;
            tableClusters = t;
        }
        long total = used + tableClusters + blocks;
        long refTable = used;
        long firstBlock = used + tableClusters;
        ByteBuffer rt = ByteBuffer.allocate((int) (tableClusters * CLUSTER));
        for (long b = 0; b < blocks; b++) {
            rt.putLong((firstBlock + b) << CLUSTER_BITS);
        }
        writeAll(rt.clear(), refTable << CLUSTER_BITS);
        for (long b = 0; b < blocks; b++) {
            ByteBuffer block = ByteBuffer.allocate(CLUSTER);
            long from = b * REFCOUNTS_PER_BLOCK;
            long upTo = Math.min(total, from + REFCOUNTS_PER_BLOCK);
            for (long c = from; c < upTo; c++) {
                block.putShort((short) 1);
            }
            writeAll(block.clear(), (firstBlock + b) << CLUSTER_BITS);
        }

        ByteBuffer h = ByteBuffer.allocate(CLUSTER); // the header, then zeros: no header extensions
        h.putInt(0x514649fb); // "QFI\xfb"
        h.putInt(3); // version
        h.putLong(0); // backing file offset
        h.putInt(0); // backing file name length
        h.putInt(CLUSTER_BITS);
        h.putLong(size);
        h.putInt(0); // no encryption
        h.putInt(l1Size);
        h.putLong(l1Offset);
        h.putLong(refTable << CLUSTER_BITS);
        h.putInt((int) tableClusters);
        h.putInt(0); // snapshots
        h.putLong(0); // snapshots offset
        h.putLong(0); // incompatible features
        h.putLong(0); // compatible features
        h.putLong(0); // autoclear features
        h.putInt(REFCOUNT_ORDER);
        h.putInt(HEADER_LENGTH);
        writeAll(h.clear(), 0);
    }

    private static long clustersFor(long bytes) {
        return Math.max(1, (bytes + CLUSTER - 1) / CLUSTER);
    }

    private void writeAll(ByteBuffer buf, long at) {
        file.writeAt(buf, at, "(its tables at " + at + ")");
    }

    @Override
    public String describe() {
        return out.toString();
    }

    @Override
    public String format() {
        return "qcow2";
    }

    @Override
    public void close() {
        file.close();
    }
}
