package io.tidemark.repository;

import io.tidemark.core.PermanentException;
import io.tidemark.core.repository.Manifest;
import io.tidemark.core.target.ObjectTarget;
import io.tidemark.format.Digest;
import io.tidemark.format.IndexPage;
import io.tidemark.format.IndexRoot;
import io.tidemark.format.ManifestCodec;
import io.tidemark.format.ObjectCodec;
import io.tidemark.format.ObjectKeys;
import io.tidemark.format.RepositoryConfig;
import java.util.ArrayList;
import java.util.Comparator;
import java.util.List;
import java.util.Map;
import java.util.Optional;
import java.util.concurrent.ConcurrentHashMap;

/**
 * A Tidemark repository on one {@link ObjectTarget}: content-addressed chunks, index pages and
 * roots, and manifests written last. Thread-safe. Every object read is verified against the digest
 * it is named by; a mismatch raises {@link io.tidemark.core.CorruptObjectException}.
 */
public final class Repository {

    private final ObjectTarget target;
    private final RepositoryConfig config;
    /** Manifests are immutable, so a read one can be kept. */
    private final Map<String, Manifest> manifestCache = new ConcurrentHashMap<>();

    private Repository(ObjectTarget target, RepositoryConfig config) {
        this.target = target;
        this.config = config;
    }

    /** Opens an existing repository. */
    public static Repository open(ObjectTarget target) {
        byte[] bytes = target.get(ObjectKeys.CONFIG)
                .orElseThrow(() -> new PermanentException("no Tidemark repository at " + target.describe()
                        + ": it has no '" + ObjectKeys.CONFIG + "' object. Check the location, or let a backup"
                        + " create the repository there"));
        return new Repository(target, RepositoryConfig.parse(ObjectKeys.CONFIG, bytes));
    }

    /** Opens the repository, creating it with {@code config} when the location is empty. */
    public static Repository openOrInit(ObjectTarget target, RepositoryConfig config) {
        target.putIfAbsent(ObjectKeys.CONFIG, config.toBytes());
        return open(target);
    }

    public ObjectTarget target() {
        return target;
    }

    public RepositoryConfig config() {
        return config;
    }

    public String describe() {
        return target.describe();
    }

    /** The result of storing one chunk: its digest, and whether the repository lacked it. */
    public record StoredChunk(Digest digest, boolean added, long storedBytes) {}

    /**
     * Stores {@code plain[0, length)} as a chunk unless the repository already has it. An all-zero
     * chunk is never stored: it gets {@link Digest#ZERO}.
     */
    public StoredChunk putChunk(byte[] plain, int length) {
        if (isAllZero(plain, length)) {
            return new StoredChunk(Digest.ZERO, false, 0);
        }
        Digest d = Digest.sha256(plain, 0, length);
        String key = ObjectKeys.chunk(d);
        if (target.exists(key)) {
            return new StoredChunk(d, false, 0);
        }
        byte[] object = ObjectCodec.encode(plain, length);
        boolean added = target.putIfAbsentDeferred(key, object); // durable at commit()
        return new StoredChunk(d, added, added ? object.length : 0);
    }

    /** The plaintext of chunk {@code d}, verified; all zeros for {@link Digest#ZERO}. */
    public byte[] chunk(Digest d, int length) {
        if (d.isZero()) {
            return new byte[length];
        }
        return readVerified(ObjectKeys.chunk(d), d);
    }

    public IndexPage page(Digest d) {
        String key = ObjectKeys.page(d);
        return IndexPage.parse(key, readVerified(key, d));
    }

    public IndexRoot root(Digest d) {
        String key = ObjectKeys.root(d);
        return IndexRoot.parse(key, readVerified(key, d));
    }

    Digest putPage(IndexPage page) {
        return putAddressed(page.toBytes(), true);
    }

    Digest putRoot(IndexRoot root) {
        return putAddressed(root.toBytes(), false);
    }

    private Digest putAddressed(byte[] plain, boolean page) {
        Digest d = Digest.sha256(plain);
        String key = page ? ObjectKeys.page(d) : ObjectKeys.root(d);
        if (!target.exists(key)) {
            target.putIfAbsentDeferred(key, ObjectCodec.encode(plain)); // durable at commit()
        }
        return d;
    }

    private byte[] readVerified(String key, Digest d) {
        byte[] object = target.get(key)
                .orElseThrow(() -> new PermanentException("object " + key + " is missing from " + target.describe()
                        + " (run `tidemark verify`; restore from another target if it holds the point)"));
        return ObjectCodec.decode(key, object, d);
    }

    /**
     * Starts the index of one disk. With a parent index of the same geometry, only the chunks that
     * are {@link DiskIndexBuilder#set set} differ from it, and only their pages are written.
     */
    public DiskIndexBuilder newIndex(long diskSize, Optional<IndexRoot> parent) {
        Optional<IndexRoot> usable = parent.filter(p -> p.diskSize() == diskSize
                && p.chunkSize() == config.chunkSize()
                && p.entriesPerPage() == config.entriesPerPage());
        return new DiskIndexBuilder(this, diskSize, usable);
    }

    /**
     * Commits a restore point by making the objects stored so far durable and then writing its
     * manifest, after everything it references. Idempotent:
     * committing the same manifest twice leaves one.
     */
    public void commit(Manifest m) {
        target.flush(); // every chunk, page and root it refers to is durable before it is
        String key = ObjectKeys.manifest(m.vm(), m.id());
        target.putIfAbsent(key, ManifestCodec.encode(m));
        manifestCache.put(key, m);
    }

    /** The VMs that have restore points. */
    public List<String> vms() {
        List<String> vms = new ArrayList<>();
        for (String key : target.list(ObjectKeys.MANIFESTS)) {
            String rest = key.substring(ObjectKeys.MANIFESTS.length());
            int slash = rest.indexOf('/');
            if (slash > 0) {
                String vm = rest.substring(0, slash);
                if (vms.isEmpty() || !vms.get(vms.size() - 1).equals(vm)) {
                    vms.add(vm);
                }
            }
        }
        return vms;
    }

    /** The restore points of {@code vm}, oldest first. */
    public List<Manifest> manifests(String vm) {
        List<Manifest> out = new ArrayList<>();
        for (String key : target.list(ObjectKeys.manifestPrefix(vm))) {
            String id = ObjectKeys.restorePointIdOf(key);
            // a listing can name a manifest a moment before it can be read (seen on S3Proxy) or
            // after prune removed it: only a manifest that can be read is a restore point
            if (id != null) {
                manifest(vm, id).ifPresent(out::add);
            }
        }
        out.sort(Comparator.comparing(Manifest::id));
        return out;
    }

    public Optional<Manifest> manifest(String vm, String id) {
        String key = ObjectKeys.manifest(vm, id);
        Manifest cached = manifestCache.get(key);
        if (cached != null) {
            return Optional.of(cached);
        }
        return target.get(key).map(bytes -> {
            Manifest m = ManifestCodec.decode(key, bytes);
            manifestCache.put(key, m);
            return m;
        });
    }

    public boolean hasManifest(String vm, String id) {
        return manifestCache.containsKey(ObjectKeys.manifest(vm, id)) || target.exists(ObjectKeys.manifest(vm, id));
    }

    public Optional<Manifest> latest(String vm) {
        List<Manifest> all = manifests(vm);
        return all.isEmpty() ? Optional.empty() : Optional.of(all.get(all.size() - 1));
    }

    /** The restore point a job produced, if it committed one: the idempotency check of workers. */
    public Optional<Manifest> findByJob(String vm, String jobId) {
        return manifests(vm).stream().filter(m -> m.jobId().equals(jobId)).findFirst();
    }

    static boolean isAllZero(byte[] data, int length) {
        for (int i = 0; i < length; i++) {
            if (data[i] != 0) {
                return false;
            }
        }
        return true;
    }
}
