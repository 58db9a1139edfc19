package io.tidemark.repository;

import io.tidemark.format.Digest;
import io.tidemark.format.IndexPage;
import io.tidemark.format.IndexRoot;
import java.util.ArrayList;
import java.util.List;
import java.util.Optional;
import java.util.TreeMap;

/**
 * Builds the index of one disk of one restore point. Chunks not {@link #set} keep their parent's
 * digest (or are zero without a parent). Writing costs O(changed pages): an untouched page is the
 * parent's page object. Thread-safe.
 */
public final class DiskIndexBuilder {

    private final Repository repository;
    private final long diskSize;
    private final int chunkSize;
    private final int perPage;
    private final Optional<IndexRoot> parent;
    private final TreeMap<Integer, IndexPage> touched = new TreeMap<>();

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
        page.set((int) (chunkNo % perPage), digest);
    }

    /** Sets chunk {@code chunkNo} to base chunk {@code base} with {@code patch} over it (ADR 15). */
    public synchronized void setPatched(long chunkNo, Digest base, Digest patch) {
        int p = Math.toIntExact(chunkNo / perPage);
        IndexPage page = touched.computeIfAbsent(p, this::startPage);
        page.set((int) (chunkNo % perPage), base, patch);
    }

    /** What the parent index holds for one chunk: its chunk (or base) and its patch, if any. */
    public record Entry(Digest chunk, Digest patch) {
        public static final Entry ZERO = new Entry(Digest.ZERO, Digest.ZERO);
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
        return new Entry(page.get(i), page.patch(i));
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

    /** Writes the changed pages and the root; returns the root's digest. */
    public synchronized Digest finish() {
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
        return repository.putRoot(new IndexRoot(diskSize, chunkSize, perPage, digests));
    }
}
