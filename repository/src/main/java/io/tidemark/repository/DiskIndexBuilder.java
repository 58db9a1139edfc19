package io.tidemark.repository;

import io.tidemark.format.ChunkPatch;
import io.tidemark.format.Digest;
import io.tidemark.format.FormatConstants;
import io.tidemark.format.IndexPage;
import io.tidemark.format.IndexRoot;
import io.tidemark.format.ObjectKeys;
import io.tidemark.format.PatchPack;
import io.tidemark.format.PatchRef;
import java.util.ArrayList;
import java.util.HashMap;
import java.util.List;
import java.util.Map;
import java.util.Optional;
import java.util.TreeMap;
import java.util.concurrent.atomic.AtomicLong;

/**
 * Builds the index of one disk of one restore point. Chunks not {@link #set} keep their parent's
 * digest (or are zero without a parent). Writing costs O(changed pages): an untouched page is the
 * parent's page object. Thread-safe.
 *
 * <p>Patches given to {@link #setPatched(long, ChunkPatch)} go into packs (ADR 26): the patches of
 * one page wait until they fill {@link FormatConstants#PACK_MAX_BYTES} or {@link #finish}, and are
 * then written as one object. At {@link #finish}, an older pack that a changed page now names for
 * less than half of its bytes has its live slots written again into a new pack, so a reader of any
 * page reads at most twice the patch bytes it uses, however many incrementals came before.
 */
public final class DiskIndexBuilder {

    /** The most patch bytes waiting for their packs, all pages together (ADR 26): a bound on memory. */
    static final int PENDING_MAX_BYTES = 2 * FormatConstants.PACK_MAX_BYTES;

    private final Repository repository;
    private final long diskSize;
    private final int chunkSize;
    private final int perPage;
    private final Optional<IndexRoot> parent;
    private final TreeMap<Integer, IndexPage> touched = new TreeMap<>();
    /** Patches waiting for their pack, by page. */
    private final Map<Integer, Waiting> pending = new HashMap<>();
    /** The slot bytes waiting in {@link #pending}, all pages together. */
    private long pendingTotal;
    /** Set by {@link #finish}: the pages are written, nothing may change them. */
    private boolean finished;

    private final AtomicLong patchBytesAdded = new AtomicLong();
    private final AtomicLong packsWritten = new AtomicLong();

    DiskIndexBuilder(Repository repository, long diskSize, Optional<IndexRoot> parent) {
        this.repository = repository;
        this.diskSize = diskSize;
        this.chunkSize = repository.config().chunkSize();
        this.perPage = repository.config().entriesPerPage();
        this.parent = parent;
    }

    /** Whether the index starts from a parent (an incremental). */
    public boolean hasParent() {
        return parent.isPresent();
    }

    public synchronized void set(long chunkNo, Digest digest) {
        int p = Math.toIntExact(chunkNo / perPage);
        IndexPage page = touched.computeIfAbsent(p, this::startPage);
        dropPending(p, (int) (chunkNo % perPage));
        page.set((int) (chunkNo % perPage), digest);
    }

    /** Forgets a waiting patch of entry {@code i} of page {@code p}: the entry is set otherwise now. */
    private void dropPending(int p, int i) {
        Waiting waiting = pending.get(p);
        if (waiting != null) {
            pendingTotal -= waiting.remove(i);
            if (waiting.slots.isEmpty()) {
                pending.remove(p); // an empty page never becomes a pack
            }
        }
    }

    /** The patches of one page waiting for their pack (entry → patch) and their slot bytes. */
    private static final class Waiting {
        final TreeMap<Integer, ChunkPatch> slots = new TreeMap<>();
        int bytes;

        /** Adds (or replaces) entry {@code i}'s patch; returns how many bytes now wait more. */
        int put(int i, ChunkPatch patch) {
            int grown = patch.payloadBytes() - remove(i);
            slots.put(i, patch);
            bytes += patch.payloadBytes();
            return grown;
        }

        /** Forgets entry {@code i}'s patch; returns its bytes (0 if none waited). */
        int remove(int i) {
            ChunkPatch dropped = slots.remove(i);
            int n = dropped == null ? 0 : dropped.payloadBytes();
            bytes -= n;
            return n;
        }
    }

    /**
     * Sets chunk {@code chunkNo} to base chunk {@code base} with the patch object {@code patch} over
     * it (ADR 15): how points were written before packs, and still read.
     */
    public synchronized void setPatched(long chunkNo, Digest base, Digest patch) {
        int p = Math.toIntExact(chunkNo / perPage);
        IndexPage page = touched.computeIfAbsent(p, this::startPage);
        dropPending(p, (int) (chunkNo % perPage));
        page.set((int) (chunkNo % perPage), base, patch);
    }

    /**
     * Sets chunk {@code chunkNo} to {@code patch}'s base chunk with {@code patch} over it, in a pack
     * with other patches of its page (ADR 26). The pack is written once the page's waiting patches
     * reach {@link FormatConstants#PACK_MAX_BYTES}, else at {@link #finish}; until then the entry
     * is not read again by this builder's caller (each chunk is set once per backup).
     */
    public void setPatched(long chunkNo, ChunkPatch patch) {
        int p = Math.toIntExact(chunkNo / perPage);
        Map<Integer, TreeMap<Integer, ChunkPatch>> ready = new TreeMap<>();
        synchronized (this) {
            checkNotFinished();
            touched.computeIfAbsent(p, this::startPage);
            dropPending(p, (int) (chunkNo % perPage)); // set twice: the later patch wins
            Waiting waiting = pending.get(p);
            if (waiting != null
                    && waiting.bytes > 0
                    && waiting.bytes + patch.payloadBytes() > FormatConstants.PACK_MAX_BYTES) {
                ready.put(p, takePending(p));
            }
            pendingTotal += pending.computeIfAbsent(p, k -> new Waiting()).put((int) (chunkNo % perPage), patch);
            // a backup goes through the disk in order: the lowest other page waiting is one it has
            // passed, so memory stays at a few packs whatever the number of pages
            while (pendingTotal > PENDING_MAX_BYTES && pending.size() > 1) {
                int oldest = pending.keySet().stream()
                        .filter(k -> k != p)
                        .min(Integer::compare)
                        .orElseThrow();
                ready.put(oldest, takePending(oldest));
            }
        }
        // outside the lock: compressing and storing a pack takes milliseconds
        ready.forEach(this::writePack);
    }

    /** Removes page {@code p}'s waiting patches from {@link #pending}; the caller writes them. */
    private TreeMap<Integer, ChunkPatch> takePending(int p) {
        Waiting waiting = pending.remove(p);
        pendingTotal -= waiting.bytes;
        return waiting.slots;
    }

    /** Stores the patches {@code slots} of page {@code p} as one pack and points their entries at it. */
    private void writePack(int p, TreeMap<Integer, ChunkPatch> slots) {
        PatchPack pack = new PatchPack(slots);
        Repository.StoredChunk stored = repository.putPack(pack);
        packsWritten.incrementAndGet();
        if (stored.added()) {
            long bytes = 0;
            for (ChunkPatch patch : slots.values()) {
                bytes += patch.dataBytes();
            }
            patchBytesAdded.addAndGet(bytes);
        }
        synchronized (this) {
            checkNotFinished(); // a pack stored after its page was written would be named by nothing
            IndexPage page = touched.get(p);
            slots.forEach(
                    (i, patch) -> page.setPacked(i, patch.base(), stored.digest(), pack.slotBytes(i), pack.bytes()));
        }
    }

    /** The bytes of changed data the patches and packs written so far hold, counting only new packs. */
    public long patchBytesAdded() {
        return patchBytesAdded.get();
    }

    /** The patch bytes waiting for their packs now (at most about {@link #PENDING_MAX_BYTES}). */
    synchronized long pendingBytes() {
        return pendingTotal;
    }

    /** How many packs this builder wrote (ADR 26), new or already stored. */
    public long packsWritten() {
        return packsWritten.get();
    }

    /** What the parent index holds for one chunk: its chunk (or base) and its patch, if any. */
    public record Entry(Digest chunk, PatchRef patch) {
        public static final Entry ZERO = new Entry(Digest.ZERO, PatchRef.NONE);
    }

    /**
     * The parent's entry for chunk {@code chunkNo} ({@link Entry#ZERO} without a parent). Read
     * before the chunk is {@link #set}: a page already touched answers from its copy, which holds
     * the parent's entries until they are set.
     */
    public synchronized Entry parentEntry(long chunkNo) {
        if (parent.isEmpty()) {
            return Entry.ZERO;
        }
        int p = Math.toIntExact(chunkNo / perPage);
        IndexPage page = touched.computeIfAbsent(p, this::startPage);
        int i = (int) (chunkNo % perPage);
        return new Entry(page.get(i), page.patchRef(i));
    }

    private IndexPage startPage(int p) {
        if (parent.isPresent()) {
            return repository.page(parent.get().pages().get(p)).copy();
        }
        return new IndexPage(entriesInPage(p));
    }

    private int entriesInPage(int p) {
        long remaining = IndexRoot.chunkCount(diskSize, chunkSize) - (long) p * perPage;
        return (int) Math.min(perPage, remaining);
    }

    /**
     * Writes the waiting packs, the changed pages and the root; returns the root's digest. Called once,
     * after every set.
     */
    public synchronized Digest finish() {
        checkNotFinished();
        for (int p : touched.keySet()) {
            Waiting waiting = pending.get(p);
            TreeMap<Integer, ChunkPatch> slots = waiting == null ? new TreeMap<>() : waiting.slots;
            repackMostlyDead(touched.get(p), slots);
            writePacks(p, slots);
        }
        pending.clear();
        pendingTotal = 0;
        int pages = IndexRoot.pageCount(diskSize, chunkSize, perPage);
        List<Digest> digests = new ArrayList<>(pages);
        for (int p = 0; p < pages; p++) {
            IndexPage page = touched.get(p);
            if (page != null) {
                digests.add(repository.putPage(page));
            } else if (parent.isPresent()) {
                digests.add(parent.get().pages().get(p));
            } else {
                digests.add(repository.putPage(new IndexPage(entriesInPage(p))));
            }
        }
        finished = true;
        return repository.putRoot(new IndexRoot(diskSize, chunkSize, perPage, digests));
    }

    /**
     * Refuses work after {@link #finish}: its caller lets every {@link #setPatched} return before
     * finishing (a backup drains its store threads first).
     */
    private void checkNotFinished() {
        if (finished) {
            throw new IllegalStateException("the index was finished before all its patches were stored");
        }
    }

    /**
     * Adds to {@code slots} the live patches of every pack {@code page} names for less than half of
     * its bytes, so that pack is no longer named and a reader of the page reads at most twice the
     * patch bytes it uses.
     */
    private void repackMostlyDead(IndexPage page, TreeMap<Integer, ChunkPatch> slots) {
        Map<Digest, Integer> live = new HashMap<>(); // entries with a new patch waiting no longer name theirs
        for (int i = 0; i < page.size(); i++) {
            if (page.packed(i) && !slots.containsKey(i)) {
                live.merge(page.patch(i), page.slotBytes(i), Integer::sum);
            }
        }
        for (Map.Entry<Digest, Integer> e : live.entrySet()) {
            if (2L * e.getValue() >= page.packBytes(e.getKey())) {
                continue;
            }
            PatchPack old = repository.pack(e.getKey());
            for (int i = 0; i < page.size(); i++) {
                if (page.packed(i) && page.patch(i).equals(e.getKey()) && !slots.containsKey(i)) {
                    slots.put(i, old.slot(ObjectKeys.chunk(e.getKey()), i));
                }
            }
        }
    }

    /** Writes {@code slots} of page {@code p} as packs of at most {@link FormatConstants#PACK_MAX_BYTES}. */
    private void writePacks(int p, TreeMap<Integer, ChunkPatch> slots) {
        TreeMap<Integer, ChunkPatch> pack = new TreeMap<>();
        int bytes = 0;
        for (Map.Entry<Integer, ChunkPatch> e : slots.entrySet()) {
            int n = e.getValue().payloadBytes();
            if (!pack.isEmpty() && bytes + n > FormatConstants.PACK_MAX_BYTES) {
                writePack(p, pack);
                pack = new TreeMap<>();
                bytes = 0;
            }
            pack.put(e.getKey(), e.getValue());
            bytes += n;
        }
        if (!pack.isEmpty()) {
            writePack(p, pack);
        }
    }
}
