package io.tidemark.repository;

import io.tidemark.core.CorruptObjectException;
import io.tidemark.core.PermanentException;
import io.tidemark.core.repository.Manifest;
import io.tidemark.core.repository.PointMark;
import io.tidemark.core.target.ObjectTarget;
import io.tidemark.format.Digest;
import io.tidemark.format.IndexPage;
import io.tidemark.format.IndexRoot;
import io.tidemark.format.ManifestCodec;
import io.tidemark.format.MasterKeys;
import io.tidemark.format.ObjectCodec;
import io.tidemark.format.ObjectKeys;
import io.tidemark.format.Passphrase;
import io.tidemark.format.PointMarkCodec;
import io.tidemark.format.RepositoryConfig;
import io.tidemark.format.WrappedKeys;
import java.security.SecureRandom;
import java.util.ArrayList;
import java.util.Comparator;
import java.util.List;
import java.util.Map;
import java.util.Optional;
import java.util.Set;
import java.util.concurrent.ConcurrentHashMap;
import org.slf4j.Logger;
import org.slf4j.LoggerFactory;

/**
 * A Tidemark repository on one {@link ObjectTarget}: content-addressed chunks, index pages and
 * roots, and manifests written last. Thread-safe. Every object read is verified against the name
 * it is stored under; a mismatch raises {@link io.tidemark.core.CorruptObjectException}.
 *
 * <p>An <em>encrypted</em> repository (its config has an {@code encryption} section) is opened with
 * a passphrase, which unwraps its master keys from one of its key objects ({@code keys/}). Then
 * content is named by HMAC-SHA256 under the id key instead of SHA-256, every object (chunks, pages,
 * roots, manifests) is encrypted with AES-256-GCM bound to its key, and a read verifies both the
 * authentication tag and the name. The passphrase and keys are never logged or put in a message.
 */
public final class Repository {

    private static final SecureRandom RANDOM = new SecureRandom();
    private static final Logger log = LoggerFactory.getLogger(Repository.class);

    private final ObjectTarget target;
    private final RepositoryConfig config;
    /** The master keys of an encrypted repository; null when it is not encrypted. */
    private final MasterKeys keys;
    /** The key object the keys were unwrapped from; null when not encrypted or opened as a replica. */
    private final String keyObject;
    /** Manifests are immutable, so a read one can be kept. */
    private final Map<String, Manifest> manifestCache = new ConcurrentHashMap<>();
    /** The unreadable manifests already logged, so a long-running engine warns once per object. */
    private final Set<String> warned = ConcurrentHashMap.newKeySet();

    private Repository(ObjectTarget target, RepositoryConfig config, MasterKeys keys, String keyObject) {
        this.target = target;
        this.config = config;
        this.keys = keys;
        this.keyObject = keyObject;
    }

    /** Opens an existing unencrypted repository; an encrypted one fails, saying how to give its passphrase. */
    public static Repository open(ObjectTarget target) {
        return open(target, PassphraseSource.NONE);
    }

    /**
     * Opens an existing repository; when it is encrypted, {@code passphrases} is asked for its
     * passphrase.
     *
     * @throws PermanentException "wrong passphrase for repository …" when no key object opens with it
     */
    public static Repository open(ObjectTarget target, PassphraseSource passphrases) {
        RepositoryConfig config = readConfig(target);
        if (!config.encrypted()) {
            return new Repository(target, config, null, null);
        }
        return unlock(target, config, passphrases.passphrase(target.describe()));
    }

    /** Opens the repository, creating it unencrypted with {@code config} when the location is empty. */
    public static Repository openOrInit(ObjectTarget target, RepositoryConfig config) {
        target.putIfAbsent(ObjectKeys.CONFIG, config.toBytes());
        return open(target);
    }

    /**
     * Opens the repository with {@code passphrase}, creating it encrypted when the location is empty:
     * new random master keys, wrapped under {@code passphrase} with {@code kdfIterations} of PBKDF2
     * into a key object, written before the config. Creating concurrently from two places is safe:
     * one config wins, and the other's key object is ignored (its key check does not match). An
     * existing unencrypted repository opens as it is; see {@link #encrypted()}.
     */
    public static Repository openOrInit(
            ObjectTarget target, RepositoryConfig config, Passphrase passphrase, int kdfIterations) {
        if (!target.exists(ObjectKeys.CONFIG)) {
            MasterKeys fresh = MasterKeys.generate(RANDOM);
            putKeyObject(target, WrappedKeys.wrap(fresh, passphrase, kdfIterations, RANDOM));
            target.putIfAbsent(ObjectKeys.CONFIG, config.encryptedWith(fresh).toBytes());
        }
        return open(target, PassphraseSource.of(passphrase));
    }

    private static RepositoryConfig readConfig(ObjectTarget target) {
        byte[] bytes = target.get(ObjectKeys.CONFIG)
                .orElseThrow(() -> new PermanentException("no Tidemark repository at " + target.describe()
                        + ": it has no '" + ObjectKeys.CONFIG + "' object. Check the location, or let a backup"
                        + " create the repository there"));
        return RepositoryConfig.parse(ObjectKeys.CONFIG, bytes);
    }

    private static Repository unlock(ObjectTarget target, RepositoryConfig config, Passphrase passphrase) {
        String check = config.encryption().orElseThrow().keyCheck();
        List<String> candidates = target.list(ObjectKeys.KEYS);
        if (candidates.isEmpty()) {
            throw new PermanentException("encrypted repository " + target.describe() + " has no key objects under "
                    + ObjectKeys.KEYS + ": without them its data cannot be read. Copy the keys/ objects from"
                    + " another location that holds this repository");
        }
        int corrupt = 0;
        for (String k : candidates) {
            Optional<byte[]> bytes = target.get(k);
            if (bytes.isEmpty()) {
                continue; // removed by a concurrent passphrase change
            }
            WrappedKeys wrapped;
            try {
                wrapped = WrappedKeys.parse(k, bytes.get());
            } catch (CorruptObjectException e) {
                corrupt++;
                continue;
            }
            Optional<MasterKeys> unwrapped = wrapped.unwrap(passphrase, RANDOM);
            if (unwrapped.isPresent() && unwrapped.get().keyCheck().equals(check)) {
                return new Repository(target, config, unwrapped.get(), k);
            }
        }
        throw new PermanentException("wrong passphrase for repository " + target.describe()
                + (corrupt > 0 ? " (" + corrupt + " of its key objects are unreadable)" : "")
                + ": check TIDEMARK_PASSPHRASE or the passphrase file");
    }

    private static String putKeyObject(ObjectTarget target, WrappedKeys wrapped) {
        byte[] bytes = wrapped.toBytes();
        String key = ObjectKeys.keyObject(Digest.sha256(bytes));
        target.putIfAbsent(key, bytes);
        return key;
    }

    /** Whether the repository is encrypted. */
    public boolean encrypted() {
        return keys != null;
    }

    /**
     * Re-wraps the master keys under {@code next}: writes a new key object, checks that it opens
     * with {@code next}, then removes the key object this repository was opened with. Only key
     * objects change; data and names stay as they are. A process killed in between leaves both key
     * objects, so either passphrase opens the repository.
     *
     * @return the new key object's key
     * @throws PermanentException if the repository is not encrypted
     */
    public String changePassphrase(Passphrase next, int kdfIterations) {
        if (keys == null || keyObject == null) {
            throw new PermanentException("repository " + describe() + " is not encrypted (or was opened without a"
                    + " passphrase): there is no passphrase to change");
        }
        String added = putKeyObject(target, WrappedKeys.wrap(keys, next, kdfIterations, RANDOM));
        Repository reopened = unlock(target, config, next);
        if (!reopened.keys.keyCheck().equals(keys.keyCheck())) {
            throw new IllegalStateException("a freshly written key object opened other keys");
        }
        if (!added.equals(keyObject)) {
            target.delete(keyObject);
        }
        return added;
    }

    /**
     * This repository on {@code other}: when {@code other} is empty, its key objects (ciphertext, as
     * they are) and then its config are copied there first, so a replica opens with the same
     * passphrase and reads with the same master keys. The caller compares {@link #config()}s to
     * detect a location that holds another repository.
     */
    public Repository replicaOn(ObjectTarget other) {
        if (!other.exists(ObjectKeys.CONFIG)) {
            if (keys != null) {
                for (String k : target.list(ObjectKeys.KEYS)) {
                    target.get(k).ifPresent(bytes -> other.putIfAbsent(k, bytes));
                }
            }
            other.putIfAbsent(ObjectKeys.CONFIG, config.toBytes());
        }
        return new Repository(other, readConfig(other), keys, null);
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
        Digest d = name(plain, length);
        String key = ObjectKeys.chunk(d);
        if (target.exists(key)) {
            return new StoredChunk(d, false, 0);
        }
        byte[] object = ObjectCodec.encode(plain, length, key, keys);
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

    /** The name of content: SHA-256, or HMAC-SHA256 under the id key when encrypted. */
    private Digest name(byte[] plain, int length) {
        return keys == null ? Digest.sha256(plain, 0, length) : keys.name(plain, 0, length);
    }

    private Digest putAddressed(byte[] plain, boolean page) {
        Digest d = name(plain, plain.length);
        String key = page ? ObjectKeys.page(d) : ObjectKeys.root(d);
        if (!target.exists(key)) {
            target.putIfAbsentDeferred(key, ObjectCodec.encode(plain, plain.length, key, keys)); // durable at commit()
        }
        return d;
    }

    private byte[] readVerified(String key, Digest d) {
        byte[] object = target.get(key)
                .orElseThrow(() -> new PermanentException("object " + key + " is missing from " + target.describe()
                        + " (run `tidemark verify`; restore from another target if it holds the point)"));
        return ObjectCodec.decode(key, object, d, keys);
    }

    /**
     * Checks a stored content-addressed object (a chunk, page or root, as read from the target)
     * against the name {@code d} it is stored under {@code key}, without keeping the plaintext: what
     * the replicator does before it ships the object as it is.
     *
     * @throws CorruptObjectException naming {@code key} if it fails
     */
    public void verify(String key, byte[] object, Digest d) {
        ObjectCodec.decode(key, object, d, keys);
    }

    /**
     * The stored bytes of a manifest (encrypted when the repository is), after checking that they
     * decode: what the replicator ships as they are.
     */
    public Optional<byte[]> storedManifest(String vm, String id) {
        String key = ObjectKeys.manifest(vm, id);
        return target.get(key).map(bytes -> {
            decodeManifest(key, bytes);
            return bytes;
        });
    }

    private byte[] encodeManifest(String key, Manifest m) {
        byte[] json = ManifestCodec.encode(m);
        return keys == null ? json : ObjectCodec.encode(json, json.length, key, keys);
    }

    private Manifest decodeManifest(String key, byte[] bytes) {
        return ManifestCodec.decode(key, keys == null ? bytes : ObjectCodec.decodeNamed(key, bytes, keys));
    }

    /**
     * Checks the stored bytes of one object as a read would: a chunk, page or root against the
     * digest its key names, a manifest by parsing it. For copying objects between targets (repair),
     * which never stores bytes that fail this.
     *
     * @throws io.tidemark.core.CorruptObjectException if they fail
     */
    public void checkObject(String key, byte[] object) {
        if (key.startsWith(ObjectKeys.MANIFESTS)) {
            decodeManifest(key, object);
            return;
        }
        ObjectCodec.decode(key, object, Digest.fromHex(key.substring(key.lastIndexOf('/') + 1)), keys);
    }

    /**
     * The manifest stored as {@code bytes} under {@code key}, decrypted when the repository is
     * encrypted and parsed, bypassing the cache: what a check reads, so a damaged object is never
     * hidden by a copy read earlier.
     *
     * @throws CorruptObjectException naming {@code key} when it cannot be decrypted or parsed
     */
    public Manifest parseManifest(String key, byte[] bytes) {
        return decodeManifest(key, bytes);
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
        target.putIfAbsent(key, encodeManifest(key, m));
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

    /**
     * A manifest that is listed but cannot be read (truncated, corrupt, or not decryptable): the
     * restore point it would be, its key, and why. It never hides the readable points.
     */
    public record UnreadableManifest(String vm, String id, String key, String reason) {}

    /** The readable restore points of one VM, oldest first, and the manifests that cannot be read. */
    public record Listing(List<Manifest> points, List<UnreadableManifest> unreadable) {
        public Listing {
            points = List.copyOf(points);
            unreadable = List.copyOf(unreadable);
        }
    }

    /**
     * The restore points of {@code vm}, oldest first, and the manifests that cannot be read, for a
     * caller that reports them itself. A corrupt or truncated manifest leaves every other point usable.
     */
    public Listing listing(String vm) {
        List<Manifest> out = new ArrayList<>();
        List<UnreadableManifest> unreadable = new ArrayList<>();
        for (String key : target.list(ObjectKeys.manifestPrefix(vm))) {
            String id = ObjectKeys.restorePointIdOf(key);
            // a listing can name a manifest a moment before it can be read (seen on S3Proxy) or
            // after prune removed it: only a manifest that can be read is a restore point
            if (id == null) {
                continue;
            }
            try {
                manifest(vm, id).ifPresent(out::add);
            } catch (CorruptObjectException e) {
                unreadable.add(new UnreadableManifest(vm, id, key, e.getMessage()));
            }
        }
        out.sort(Comparator.comparing(Manifest::id));
        return new Listing(out, unreadable);
    }

    /**
     * The readable restore points of {@code vm}, oldest first. A manifest that cannot be read is
     * left out and logged once per repository instance as a warning (see {@link #listing}).
     */
    public List<Manifest> manifests(String vm) {
        Listing listing = listing(vm);
        for (UnreadableManifest u : listing.unreadable()) {
            if (warned.add(u.key())) {
                log.warn(
                        "restore point {} of VM {} in {} is unreadable and left out: {}",
                        u.id(),
                        vm,
                        target.describe(),
                        u.reason());
            }
        }
        return listing.points();
    }

    /**
     * The restore point {@code id} of {@code vm}; empty when it does not exist.
     *
     * @throws CorruptObjectException naming the manifest's key when it exists but cannot be read
     */
    public Optional<Manifest> manifest(String vm, String id) {
        String key = ObjectKeys.manifest(vm, id);
        Manifest cached = manifestCache.get(key);
        if (cached != null) {
            return Optional.of(cached);
        }
        return target.get(key).map(bytes -> {
            Manifest m = decodeManifest(key, bytes);
            manifestCache.put(key, m);
            return m;
        });
    }

    public boolean hasManifest(String vm, String id) {
        return manifestCache.containsKey(ObjectKeys.manifest(vm, id)) || target.exists(ObjectKeys.manifest(vm, id));
    }

    /** The newest readable restore point of {@code vm}; an unreadable manifest is left out. */
    public Optional<Manifest> latest(String vm) {
        List<Manifest> all = manifests(vm);
        return all.isEmpty() ? Optional.empty() : Optional.of(all.get(all.size() - 1));
    }

    /**
     * Sets the mark on restore point {@code id} of {@code vm}, replacing any mark it had. Crash-safe:
     * the new mark is written as the next version first, and only then are the older versions
     * removed, so a process killed (or a target failing) in between leaves both, and readers take
     * the newest; a mark is never lost to a crash. Two writers racing: the later version wins.
     */
    public void mark(String vm, String id, PointMark mark) {
        byte[] bytes = PointMarkCodec.encode(mark);
        List<ObjectKeys.MarkKey> older = markVersions(vm).getOrDefault(id, List.of());
        long version = older.isEmpty() ? 1 : older.get(older.size() - 1).version() + 1;
        while (!target.putIfAbsent(ObjectKeys.mark(vm, id, version), bytes)) {
            version++; // another writer took this version meanwhile: ours comes after it
        }
        for (ObjectKeys.MarkKey k : older) {
            target.delete(k.version() == 0 ? ObjectKeys.mark(vm, id) : ObjectKeys.mark(vm, id, k.version()));
        }
    }

    /**
     * The marks on the restore points of {@code vm}, by restore point id: for each, the newest
     * version present (older ones remain only after a crash during {@link #mark}).
     */
    public Map<String, PointMark> marks(String vm) {
        Map<String, PointMark> out = new java.util.TreeMap<>();
        markVersions(vm).forEach((id, versions) -> {
            for (int i = versions.size() - 1; i >= 0; i--) {
                long v = versions.get(i).version();
                String key = v == 0 ? ObjectKeys.mark(vm, id) : ObjectKeys.mark(vm, id, v);
                Optional<byte[]> bytes = target.get(key);
                if (bytes.isPresent()) { // absent: replaced since the listing, take the next one
                    out.put(id, PointMarkCodec.decode(key, bytes.get()));
                    return;
                }
            }
        });
        return out;
    }

    /** The mark keys of {@code vm} by restore point id, each list oldest version first. */
    private Map<String, List<ObjectKeys.MarkKey>> markVersions(String vm) {
        Map<String, List<ObjectKeys.MarkKey>> out = new java.util.TreeMap<>();
        for (String key : target.list(ObjectKeys.markPrefix(vm))) {
            ObjectKeys.parseMark(vm, key).ifPresent(k -> out.computeIfAbsent(k.restorePointId(), x -> new ArrayList<>())
                    .add(k));
        }
        out.values().forEach(l -> l.sort(Comparator.comparingLong(ObjectKeys.MarkKey::version)));
        return out;
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
