package io.tidemark.workers.instant;

import io.tidemark.core.PermanentException;
import io.tidemark.core.RetriableException;
import io.tidemark.core.TidemarkException;
import io.tidemark.core.concurrent.DaemonThreads;
import io.tidemark.core.repository.DiskEntry;
import io.tidemark.core.repository.Manifest;
import io.tidemark.format.Digest;
import io.tidemark.format.IndexPage;
import io.tidemark.format.IndexRoot;
import io.tidemark.format.ObjectKeys;
import io.tidemark.format.PatchRef;
import io.tidemark.repository.Repository;
import io.tidemark.workers.nbd.Extent;
import io.tidemark.workers.nbd.NbdServer;
import java.util.ArrayList;
import java.util.Arrays;
import java.util.HashMap;
import java.util.LinkedHashMap;
import java.util.LinkedHashSet;
import java.util.List;
import java.util.Map;
import java.util.Set;
import java.util.concurrent.CompletableFuture;
import java.util.concurrent.CompletionException;
import java.util.concurrent.ConcurrentHashMap;
import java.util.concurrent.ExecutionException;
import java.util.concurrent.ExecutorService;
import java.util.concurrent.Executors;
import java.util.concurrent.Semaphore;
import java.util.concurrent.atomic.AtomicLong;
import org.slf4j.Logger;
import org.slf4j.LoggerFactory;

/**
 * One disk of one restore point, served read-only over NBD straight from its repository.
 *
 * <p>Contract:
 *
 * <ul>
 *   <li>Bytes are read through {@link Repository#chunk}, so every chunk is verified against its
 *       digest (and decrypted, when the repository is) before any byte of it is served. A chunk
 *       that cannot be read or verified fails the read with the chunk's object key in the message;
 *       it is retried on the next read, never cached.
 *   <li>Zero chunks are holes: they are served as zeros without a fetch and reported as {@code
 *       hole|zero} in {@code base:allocation}.
 *   <li>Decompressed chunks are kept in an LRU cache of at most {@code cacheBytes}; a read of chunk
 *       {@code n} also starts fetching chunks {@code n+1 … n+prefetch} in the background, and
 *       concurrent readers of one chunk share one fetch.
 *   <li>{@link #prefetchAll} fetches a list of chunks (a boot-read trace) in the background, at most
 *       {@code concurrency} at a time and at most half the cache; a read of a chunk whose prefetch is
 *       under way waits for that fetch. A prefetched chunk is verified like any other: one that fails
 *       is counted, logged once per export and not cached, and a read of it fetches it again (and
 *       fails the same way if it is still bad).
 *   <li>{@link #startRecording} notes the chunk numbers reads ask for (not read-ahead, not
 *       prefetch), each once, in the order first asked, up to a bound; {@link #stopRecording}
 *       returns them.
 * </ul>
 */
public final class RestorePointExport implements NbdServer.Export, AutoCloseable {

    private static final Logger log = LoggerFactory.getLogger(RestorePointExport.class);

    /** Why a chunk is fetched. */
    private enum Kind {
        DEMAND,
        READ_AHEAD,
        TRACE
    }

    /** Tuning of the chunk cache. */
    public record Options(long cacheBytes, int prefetchChunks, int fetchThreads) {
        public static Options defaults() {
            return new Options(256L << 20, 8, 8);
        }
    }

    private final Repository repository;
    private final String name;
    private final String describe;
    private final long size;
    private final int chunkSize;
    private final Digest[] digests;
    /** The patches of patched chunks (ADR 15), by chunk number; most disks have few or none. */
    private final Map<Integer, PatchRef> patches;

    private final int prefetch;
    private final int maxCached;
    private final ExecutorService fetchers;
    /** Access-ordered: the eldest entry is the least recently used. Guarded by itself. */
    private final LinkedHashMap<Long, CompletableFuture<byte[]>> cache = new LinkedHashMap<>(64, 0.75f, true);

    private final AtomicLong chunksFetched = new AtomicLong();
    private final AtomicLong bytesFetched = new AtomicLong();
    private final AtomicLong cacheHits = new AtomicLong();
    private final AtomicLong demandFetches = new AtomicLong();
    private final AtomicLong readWaitNanos = new AtomicLong();
    private final AtomicLong tracePrefetched = new AtomicLong();
    private final AtomicLong tracePrefetchFailed = new AtomicLong();
    private final AtomicLong tracePrefetchHits = new AtomicLong();
    /** Chunks the trace prefetch started and no read has asked for yet. */
    private final Set<Long> tracePending = ConcurrentHashMap.newKeySet();
    /** Chunk numbers reads asked for, first asked first, while recording; guarded by itself. */
    private final LinkedHashSet<Long> recorded = new LinkedHashSet<>();

    private volatile int recordLimit = -1;
    private volatile Thread prefetcher;

    private RestorePointExport(
            Repository repository,
            String name,
            String describe,
            IndexRoot root,
            Digest[] digests,
            Map<Integer, PatchRef> patches,
            Options options) {
        this.repository = repository;
        this.name = name;
        this.describe = describe;
        this.size = root.diskSize();
        this.chunkSize = root.chunkSize();
        this.digests = digests;
        this.patches = patches;
        this.prefetch = Math.max(0, options.prefetchChunks());
        this.maxCached = (int) Math.max(2 + prefetch, options.cacheBytes() / chunkSize);
        this.fetchers = Executors.newFixedThreadPool(
                Math.max(1, options.fetchThreads()), DaemonThreads.named("instant-fetch " + name));
    }

    /** Reads the index of {@code diskName} of restore point {@code m} (every page, once). */
    public static RestorePointExport open(Repository repository, Manifest m, String diskName, Options options) {
        DiskEntry disk = m.disk(diskName)
                .orElseThrow(() -> new PermanentException("restore point " + m.id() + " of " + m.vm()
                        + " has no disk '" + diskName + "'; it has "
                        + m.disks().stream().map(DiskEntry::name).toList()));
        IndexRoot root = repository.root(Digest.fromHex(disk.index()));
        Digest[] digests = new Digest[(int) root.chunkCount()];
        Map<Integer, PatchRef> patches = new HashMap<>();
        int n = 0;
        for (IndexPage page : pages(repository, root, options.fetchThreads())) {
            for (int i = 0; i < page.size() && n < digests.length; i++) {
                if (!page.patch(i).isZero()) {
                    patches.put(n, page.patchRef(i));
                }
                digests[n++] = page.get(i);
            }
        }
        if (n != digests.length) {
            throw new PermanentException("the index of disk '" + diskName + "' of restore point " + m.id()
                    + " lists " + n + " chunks where its size needs " + digests.length
                    + "; run `tidemark verify`");
        }
        String describe =
                "disk '" + diskName + "' of restore point " + m.id() + " of " + m.vm() + " in " + repository.describe();
        return new RestorePointExport(
                repository, m.vm() + "-" + diskName, describe, root, digests, Map.copyOf(patches), options);
    }

    /**
     * The index pages of {@code root}, in order, read {@code threads} at a time: from a remote
     * repository a large disk's pages (128 for 32 GiB) one after the other would cost a round trip
     * each before the first byte is served.
     */
    private static List<IndexPage> pages(Repository repository, IndexRoot root, int threads) {
        List<Digest> digests = root.pages();
        if (digests.size() <= 1 || threads <= 1) {
            return digests.stream().map(repository::page).toList();
        }
        ExecutorService pool =
                Executors.newFixedThreadPool(Math.min(threads, digests.size()), DaemonThreads.named("instant-index"));
        try {
            List<CompletableFuture<IndexPage>> futures = digests.stream()
                    .map(d -> CompletableFuture.supplyAsync(() -> repository.page(d), pool))
                    .toList();
            List<IndexPage> out = new ArrayList<>(futures.size());
            for (CompletableFuture<IndexPage> f : futures) {
                try {
                    out.add(f.join());
                } catch (CompletionException e) {
                    if (e.getCause() instanceof RuntimeException r) {
                        throw r;
                    }
                    throw e;
                }
            }
            return out;
        } finally {
            pool.shutdownNow();
        }
    }

    @Override
    public String name() {
        return name;
    }

    @Override
    public long size() {
        return size;
    }

    @Override
    public int preferredBlockSize() {
        return Math.min(chunkSize, NbdServer.MAX_REQUEST);
    }

    public int chunkSize() {
        return chunkSize;
    }

    /** Chunks fetched from the repository so far (a chunk evicted and read again counts twice). */
    public long chunksFetched() {
        return chunksFetched.get();
    }

    /** Plaintext bytes fetched from the repository so far. */
    public long bytesFetched() {
        return bytesFetched.get();
    }

    /** Chunk lookups answered from the cache. */
    public long cacheHits() {
        return cacheHits.get();
    }

    /** Chunks fetched because a read asked for one that was neither cached nor being fetched. */
    public long demandFetches() {
        return demandFetches.get();
    }

    /**
     * How long reads waited for chunks to arrive from the repository, summed over reads (reads in
     * parallel add up): the part of a guest's I/O time the repository's latency costs.
     */
    public java.time.Duration readWait() {
        return java.time.Duration.ofNanos(readWaitNanos.get());
    }

    /** Chunks of a {@link #prefetchAll} list fetched (and verified) so far. */
    public long tracePrefetched() {
        return tracePrefetched.get();
    }

    /** Chunks of a {@link #prefetchAll} list that could not be fetched or verified. */
    public long tracePrefetchFailed() {
        return tracePrefetchFailed.get();
    }

    /**
     * Chunks a read asked for that {@link #prefetchAll} had already fetched or was fetching: the
     * reads the prefetch saved a round trip (or part of one).
     */
    public long tracePrefetchHits() {
        return tracePrefetchHits.get();
    }

    /** The number of chunks of the disk. */
    public long chunkCount() {
        return digests.length;
    }

    /** How many chunks the cache holds at most. */
    public int cacheChunks() {
        return maxCached;
    }

    /**
     * Fetches {@code chunks} in the background, at most {@code concurrency} at a time, in the order
     * given; numbers out of range and zero chunks are skipped, and the list is cut at half the cache
     * so that prefetched chunks are not evicted before the guest reads them. Returns at once; {@link
     * #awaitPrefetch} waits for the end. At most one prefetch per export.
     */
    public synchronized void prefetchAll(List<Long> chunks, int concurrency) {
        if (prefetcher != null) {
            throw new IllegalStateException("the export " + name + " already prefetches");
        }
        List<Long> todo = new ArrayList<>();
        for (Long c : chunks) {
            if (todo.size() >= maxCached / 2) {
                break;
            }
            if (c != null && c >= 0 && c < digests.length && !zero(c)) {
                todo.add(c);
            }
        }
        Thread t =
                DaemonThreads.named("instant-boot-prefetch " + name).newThread(() -> prefetchLoop(todo, concurrency));
        prefetcher = t;
        t.start();
    }

    private void prefetchLoop(List<Long> todo, int concurrency) {
        Semaphore slots = new Semaphore(Math.max(1, concurrency));
        long t0 = System.nanoTime();
        try {
            for (long c : todo) {
                slots.acquire();
                tracePending.add(c);
                CompletableFuture<byte[]> f = chunk(c, Kind.TRACE);
                f.whenComplete((bytes, error) -> {
                    if (error != null) {
                        tracePending.remove(c);
                        if (tracePrefetchFailed.getAndIncrement() == 0) {
                            log.warn(
                                    "boot prefetch of chunk {} of {} failed (not cached; a read of it fetches it"
                                            + " again; further failures of this prefetch are only counted): {}",
                                    c,
                                    describe,
                                    error.getMessage());
                        }
                    }
                    slots.release();
                });
            }
            slots.acquire(Math.max(1, concurrency));
        } catch (InterruptedException e) {
            Thread.currentThread().interrupt();
            return;
        }
        log.info(
                "boot prefetch of {}: {} of {} chunks fetched in {} ms ({} failed)",
                describe,
                tracePrefetched.get(),
                todo.size(),
                (System.nanoTime() - t0) / 1_000_000,
                tracePrefetchFailed.get());
    }

    /** Waits until the {@link #prefetchAll} list is done (at once when there is none); false on timeout. */
    public boolean awaitPrefetch(java.time.Duration timeout) throws InterruptedException {
        Thread t = prefetcher;
        if (t == null) {
            return true;
        }
        t.join(Math.max(1, timeout.toMillis()));
        return !t.isAlive();
    }

    /** Starts noting the chunk numbers reads ask for, at most {@code maxChunks} of them. */
    public void startRecording(int maxChunks) {
        synchronized (recorded) {
            recorded.clear();
            recordLimit = maxChunks;
        }
    }

    /** Stops noting reads; the chunk numbers noted since {@link #startRecording}, first asked first. */
    public List<Long> stopRecording() {
        synchronized (recorded) {
            recordLimit = -1;
            return List.copyOf(recorded);
        }
    }

    private void note(long c) {
        if (recordLimit >= 0) {
            synchronized (recorded) {
                if (recorded.size() < recordLimit) {
                    recorded.add(c);
                }
            }
        }
    }

    @Override
    public void read(long offset, byte[] buf, int bufOffset, int length) {
        long end = offset + length;
        long first = offset / chunkSize;
        long last = length == 0 ? first - 1 : (end - 1) / chunkSize;
        // start every chunk of the request (and the read-ahead) before waiting for any
        List<CompletableFuture<byte[]>> parts = new ArrayList<>();
        for (long c = first; c <= last; c++) {
            if (zero(c)) {
                parts.add(null);
            } else {
                note(c);
                parts.add(chunk(c, Kind.DEMAND));
            }
        }
        prefetchChunks(last + 1, last + prefetch);
        for (long c = first; c <= last; c++) {
            long cStart = c * chunkSize;
            long from = Math.max(offset, cStart);
            long to = Math.min(end, cStart + chunkLength(c));
            int dst = bufOffset + (int) (from - offset);
            CompletableFuture<byte[]> part = parts.get((int) (c - first));
            if (part == null) {
                Arrays.fill(buf, dst, dst + (int) (to - from), (byte) 0);
            } else {
                long w0 = part.isDone() ? 0 : System.nanoTime();
                byte[] plain = await(c, part);
                if (w0 != 0) {
                    readWaitNanos.addAndGet(System.nanoTime() - w0);
                }
                System.arraycopy(plain, (int) (from - cStart), buf, dst, (int) (to - from));
            }
        }
    }

    @Override
    public void prefetch(long offset, long length) {
        if (length > 0) {
            prefetchChunks(offset / chunkSize, (offset + length - 1) / chunkSize);
        }
    }

    private void prefetchChunks(long from, long to) {
        for (long c = from; c <= Math.min(to, digests.length - 1L); c++) {
            if (!zero(c)) {
                chunk(c, Kind.READ_AHEAD);
            }
        }
    }

    @Override
    public List<Extent> allocation(long offset, long length) {
        List<Extent> out = new ArrayList<>();
        long end = offset + length;
        long pos = offset;
        while (pos < end) {
            long c = pos / chunkSize;
            int flags = zero(c) ? Extent.HOLE | Extent.ZERO : 0;
            long next = Math.min(end, c * chunkSize + chunkLength(c));
            if (!out.isEmpty() && out.get(out.size() - 1).flags() == flags) {
                Extent prev = out.remove(out.size() - 1);
                out.add(new Extent(prev.offset(), next - prev.offset(), flags));
            } else {
                out.add(new Extent(pos, next - pos, flags));
            }
            pos = next;
        }
        return out;
    }

    /** Whether chunk {@code c} reads as zeros without a fetch: a zero chunk with no patch. */
    private boolean zero(long c) {
        return digests[(int) c].isZero() && !patches.containsKey((int) c);
    }

    private int chunkLength(long c) {
        return (int) Math.min(chunkSize, size - c * chunkSize);
    }

    /** The cached (or started) fetch of chunk {@code c}. */
    private CompletableFuture<byte[]> chunk(long c, Kind kind) {
        CompletableFuture<byte[]> f;
        synchronized (cache) {
            f = cache.get(c);
            if (f != null) {
                if (kind == Kind.DEMAND) {
                    cacheHits.incrementAndGet();
                    if (tracePending.remove(c)) {
                        tracePrefetchHits.incrementAndGet();
                    }
                } else if (kind == Kind.TRACE) {
                    tracePending.remove(c); // already there: not the prefetch's doing
                }
                return f;
            }
            f = new CompletableFuture<>();
            cache.put(c, f);
            evict();
        }
        CompletableFuture<byte[]> target = f;
        try {
            fetchers.execute(() -> fetch(c, target, kind));
        } catch (java.util.concurrent.RejectedExecutionException e) {
            forget(c, target);
            target.completeExceptionally(new RetriableException("the export " + name + " is closed"));
        }
        return f;
    }

    private void evict() {
        var it = cache.entrySet().iterator();
        while (cache.size() > maxCached && it.hasNext()) {
            Map.Entry<Long, CompletableFuture<byte[]>> e = it.next();
            if (e.getValue().isDone()) {
                it.remove();
                tracePending.remove(e.getKey());
            }
        }
    }

    private void fetch(long c, CompletableFuture<byte[]> f, Kind kind) {
        Digest d = digests[(int) c];
        int length = chunkLength(c);
        try {
            byte[] plain = repository.chunk(d, patches.getOrDefault((int) c, PatchRef.NONE), length);
            if (plain.length != length) {
                throw new PermanentException("chunk " + ObjectKeys.chunk(d) + " has " + plain.length
                        + " bytes where the index expects " + length);
            }
            chunksFetched.incrementAndGet();
            bytesFetched.addAndGet(length);
            if (kind == Kind.DEMAND) {
                demandFetches.incrementAndGet();
            } else if (kind == Kind.TRACE) {
                tracePrefetched.incrementAndGet();
            }
            f.complete(plain);
        } catch (TidemarkException | IllegalStateException | IllegalArgumentException e) {
            forget(c, f);
            f.completeExceptionally(e);
        }
    }

    private void forget(long c, CompletableFuture<byte[]> f) {
        synchronized (cache) {
            cache.remove(c, f);
        }
    }

    private byte[] await(long c, CompletableFuture<byte[]> f) {
        try {
            return f.get();
        } catch (InterruptedException e) {
            Thread.currentThread().interrupt();
            throw new RetriableException("interrupted while reading chunk " + c + " of " + describe, e);
        } catch (ExecutionException | CompletionException e) {
            Throwable cause = e.getCause();
            String what = "chunk " + c + " (object " + ObjectKeys.chunk(digests[(int) c]) + ", disk offset "
                    + c * chunkSize + ") of " + describe + ": " + cause.getMessage();
            if (cause instanceof RetriableException) {
                throw new RetriableException(what, cause);
            }
            throw new PermanentException(what, cause);
        }
    }

    /** Stops the fetch threads; later reads fail. */
    @Override
    public void close() {
        Thread t = prefetcher;
        if (t != null) {
            t.interrupt();
        }
        fetchers.shutdownNow();
    }

    @Override
    public String toString() {
        return "RestorePointExport[" + describe + "]";
    }
}
