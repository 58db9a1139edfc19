package io.tidemark.workers;

import io.tidemark.core.hypervisor.DiskExport;
import io.tidemark.workers.nbd.Extent;
import io.tidemark.workers.nbd.NbdClient;
import java.util.List;
import java.util.concurrent.CompletableFuture;

/** A {@link BlockSource} on a captured disk's NBD export. */
public final class NbdBlockSource implements BlockSource {

    private final NbdClient client;

    private NbdBlockSource(NbdClient client) {
        this.client = client;
    }

    /** Connects to the export with the allocation map and, for an incremental, the dirty bitmap. */
    public static BlockSource open(DiskExport export) {
        return new NbdBlockSource(NbdClient.connect(export));
    }

    @Override
    public long size() {
        return client.size();
    }

    @Override
    public List<Extent> extents(String context, long offset, long length) {
        return client.blockStatus(context, offset, length);
    }

    @Override
    public CompletableFuture<byte[]> read(long offset, int length) {
        return client.readAsync(offset, length);
    }

    @Override
    public CompletableFuture<Void> readInto(long offset, int length, byte[] into) {
        return client.readAsync(offset, length, into, 0);
    }

    @Override
    public void close() {
        client.close();
    }
}
