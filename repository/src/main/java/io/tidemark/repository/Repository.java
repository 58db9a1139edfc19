package io.tidemark.repository;

import io.tidemark.core.CorruptObjectException;
import io.tidemark.core.PermanentException;
import io.tidemark.core.repository.Manifest;
import io.tidemark.core.repository.PointMark;
import io.tidemark.core.target.ObjectTarget;
import io.tidemark.format.ChunkPatch;
import io.tidemark.format.Digest;
import io.tidemark.format.FormatConstants;
import io.tidemark.format.IndexPage;
import io.tidemark.format.IndexRoot;
import io.tidemark.format.MasterKeys;
import io.tidemark.format.ObjectKeys;
import io.tidemark.format.Passphrase;
import io.tidemark.format.PatchPack;
import io.tidemark.format.PatchRef;
import io.tidemark.format.RepositoryConfig;
import java.util.List;
import java.util.Map;
import java.util.Optional;

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
 *
 * <p>This class is the facade over the repository's parts, each in its own class of this package:
 * the config object ({@code ConfigObject}), the key objects ({@code RepositoryKeys}: unlock and
 * passphrase change), chunks, pages and roots ({@code ChunkStore}), manifests ({@code
 * ManifestStore}) and marks ({@code Marks}).
 */
public final class Repository {

    private final ObjectTarget target;
    private final RepositoryConfig config;
    private final RepositoryKeys keys;
    private final ChunkStore chunks;
    private final ManifestStore manifests;
    private final Marks marks;

    private Repository(ObjectTarget target, RepositoryConfig config, RepositoryKeys keys) {
        this.target = target;
        this.config = config;
        this.keys = keys;
        this.chunks = new ChunkStore(target, keys.master());
        this.manifests = new ManifestStore(target, keys.master());
        this.marks = new Marks(target);
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
        RepositoryConfig config = ConfigObject.read(target);
        if (!config.encrypted()) {
            return new Repository(target, config, RepositoryKeys.NONE);
        }
        return new Repository(
                target, config, RepositoryKeys.unlock(target, config, passphrases.passphrase(target.describe())));
    }

    /** Opens the repository, creating it unencrypted with {@code config} when the location is empty. */
    public static Repository openOrInit(ObjectTarget target, RepositoryConfig config) {
        ConfigObject.putIfAbsent(target, config);
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
        if (!ConfigObject.exists(target)) {
            MasterKeys fresh = RepositoryKeys.create(target, passphrase, kdfIterations);
            ConfigObject.putIfAbsent(target, config.encryptedWith(fresh));
        }
        return open(target, PassphraseSource.of(passphrase));
    }

    /** Whether the repository is encrypted. */
    public boolean encrypted() {
        return keys.encrypted();
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
        return keys.changePassphrase(target, config, next, kdfIterations);
    }

    /**
     * This repository on {@code other}: when {@code other} is empty, its key objects (ciphertext, as
     * they are) and then its config are copied there first, so a replica opens with the same
     * passphrase and reads with the same master keys. The caller compares {@link #config()}s to
     * detect a location that holds another repository.
     */
    public Repository replicaOn(ObjectTarget other) {
        // one read for a target that has its config (every replication but the first), two writes
        // and no read back for one that had none: the config that this call wrote is ours
        java.util.Optional<RepositoryConfig> there = ConfigObject.find(other);
        if (there.isEmpty()) {
            keys.copyKeyObjects(target, other);
            if (ConfigObject.putIfAbsent(other, config)) {
                return new Repository(other, config, keys.forReplica());
            }
            there = java.util.Optional.of(ConfigObject.read(other)); // another writer's won the race
        }
        return new Repository(other, there.get(), keys.forReplica());
    }

    /**
     * This repository on {@code other} without reading or writing it: what {@link #replicaOn} returns
     * for a compatible replica, for a location that cannot be reached now (it is checked and seeded
     * by the first {@link #replicaOn} that reaches it, e.g. when the replicator ships to it).
     */
    public Repository replicaView(ObjectTarget other) {
        return new Repository(other, config, keys.forReplica());
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

    // ---- chunks, pages and roots (ChunkStore) ----

    /** The result of storing one chunk: its digest, and whether the repository lacked it. */
    public record StoredChunk(Digest digest, boolean added, long storedBytes) {}

    /**
     * Whether {@code plain[0, length)} is all zeros, so that {@link #putChunk} would store nothing
     * and name it {@link Digest#ZERO}: a vectorised compare that stops at the first non-zero byte,
     * cheap enough for a reader's thread (0.001 CPU-s per GB of zeros).
     */
    public static boolean isZeroChunk(byte[] plain, int length) {
        return ChunkStore.isAllZero(plain, length);
    }

    /**
     * Stores {@code plain[0, length)} as a chunk unless the repository already has it. An all-zero
     * chunk is never stored: it gets {@link Digest#ZERO}.
     */
    public StoredChunk putChunk(byte[] plain, int length) {
        return chunks.putChunk(plain, length);
    }

    /** The plaintext of chunk {@code d}, verified; all zeros for {@link Digest#ZERO}. */
    public byte[] chunk(Digest d, int length) {
        return chunks.chunk(d, length);
    }

    /**
     * Stores {@code patch} (ADR 15) unless the repository already has it: a content-addressed
     * object in the chunk key space, compressed and encrypted like a chunk.
     */
    public StoredChunk putPatch(ChunkPatch patch) {
        return chunks.putPatch(patch);
    }

    /**
     * Stores {@code pack} (ADR 26) unless the repository already has it: like {@link #putPatch}, one
     * object for the patches of several entries of one index page.
     */
    public StoredChunk putPack(PatchPack pack) {
        return chunks.putPack(pack);
    }

    /** The patch {@code d}, verified and parsed. */
    public ChunkPatch patch(Digest d) {
        return chunks.patch(d);
    }

    /** The patch {@code ref} names, a patch object or a pack's slot, verified and parsed. */
    public ChunkPatch patch(PatchRef ref) {
        return chunks.patch(ref);
    }

    /**
     * The pack {@code d}, read from the target, verified and parsed: what {@code verify} checks.
     * Readers of restore points go through {@link #patch(PatchRef)}, which keeps the last few packs.
     */
    public PatchPack pack(Digest d) {
        return chunks.readPack(d);
    }

    /**
     * The plaintext of entry {@code i} of {@code page}: its chunk, or its base chunk with its patch
     * applied (ADR 15, ADR 26). What every reader of a restore point's data uses.
     *
     * @throws io.tidemark.core.CorruptObjectException when the patch is not for this entry's base or length
     */
    public byte[] chunk(IndexPage page, int i, int length) {
        return chunk(page.get(i), page.patchRef(i), length);
    }

    /** The plaintext of chunk {@code base} with the patch {@code patch} names over it ({@link PatchRef#NONE}: none). */
    public byte[] chunk(Digest base, PatchRef patch, int length) {
        byte[] plain = chunk(base, length);
        if (patch.isNone()) {
            return plain;
        }
        ChunkPatch p = patchOf(base, patch, length);
        if (plain.length != length) {
            throw new CorruptObjectException(
                    ObjectKeys.chunk(base),
                    "chunk has " + plain.length + " bytes where its patch " + patch.object() + " expects " + length
                            + "; run `tidemark verify`");
        }
        return p.applyTo(plain);
    }

    /**
     * The patch {@code patch} names, verified to be for chunk {@code base} of {@code length} bytes,
     * as the index entry that names both says.
     *
     * @throws io.tidemark.core.CorruptObjectException when it is for another base or length
     */
    public ChunkPatch patchOf(Digest base, PatchRef patch, int length) {
        ChunkPatch p = chunks.patch(patch);
        if (!p.base().equals(base) || p.chunkLength() != length) {
            throw new CorruptObjectException(
                    ObjectKeys.chunk(patch.object()),
                    (patch.packed() ? "pack slot of entry " + patch.slot() : "patch") + " is for base " + p.base()
                            + " of " + p.chunkLength() + " bytes, the index names base " + base + " of " + length
                            + " bytes; run `tidemark verify`");
        }
        return p;
    }

    /**
     * {@link #chunk} into buffers the caller reuses: the verified plaintext of non-zero chunk {@code
     * d} goes to {@code into[0, n)}, n returned; {@code scratch} holds the stored object meanwhile
     * and should have room for {@link #maxObjectBytes(int)} of the chunk size. A restore keeps a few
     * such buffers instead of allocating two per chunk.
     */
    public int chunkInto(Digest d, byte[] into, byte[] scratch) {
        return chunks.chunkInto(d, into, scratch);
    }

    /** The largest stored object a chunk of {@code chunkSize} plaintext bytes can be. */
    public static int maxObjectBytes(int chunkSize) {
        return FormatConstants.OBJECT_HEADER_BYTES + FormatConstants.ENCRYPTION_OVERHEAD_BYTES + chunkSize;
    }

    public IndexPage page(Digest d) {
        return chunks.page(d);
    }

    public IndexRoot root(Digest d) {
        return chunks.root(d);
    }

    Digest putPage(IndexPage page) {
        return chunks.putPage(page);
    }

    Digest putRoot(IndexRoot root) {
        return chunks.putRoot(root);
    }

    /**
     * Checks a stored content-addressed object (a chunk, page or root, as read from the target)
     * against the name {@code d} it is stored under {@code key}, without keeping the plaintext: what
     * the replicator does before it ships the object as it is.
     *
     * @throws io.tidemark.core.CorruptObjectException naming {@code key} if it fails
     */
    public void verify(String key, byte[] object, Digest d) {
        chunks.verify(key, object, d);
    }

    /**
     * Checks the stored bytes of one object as a read would: a chunk, page or root against the
     * digest its key names, a manifest by parsing it. For copying objects between targets (repair),
     * which never stores bytes that fail this.
     *
     * @throws io.tidemark.core.CorruptObjectException if they fail
     */
    public void checkObject(String key, byte[] object) {
        if (ManifestStore.isManifestKey(key)) {
            manifests.decode(key, object);
            return;
        }
        chunks.checkAddressed(key, object);
    }

    /**
     * Starts the index of one disk. With a parent index of the same geometry, only the chunks that
     * are {@link DiskIndexBuilder#set set} differ from it, and only their pages are written.
     */
    public DiskIndexBuilder newIndex(long diskSize, Optional<IndexRoot> parent) {
        return new DiskIndexBuilder(this, diskSize, parent.filter(p -> canStartFrom(p, diskSize)));
    }

    /**
     * Whether a new index of a disk of {@code diskSize} bytes can start from {@code parent} (same
     * size and geometry), so that an incremental reads only what changed: what {@link #newIndex}
     * decides.
     */
    public boolean canStartFrom(IndexRoot parent, long diskSize) {
        return parent.diskSize() == diskSize
                && parent.chunkSize() == config.chunkSize()
                && parent.entriesPerPage() == config.entriesPerPage();
    }

    // ---- manifests (ManifestStore) ----

    /**
     * The stored bytes of a manifest (encrypted when the repository is), after checking that they
     * decode: what the replicator ships as they are.
     */
    public Optional<byte[]> storedManifest(String vm, String id) {
        return manifests.stored(vm, id);
    }

    /**
     * The manifest stored as {@code bytes} under {@code key}, decrypted when the repository is
     * encrypted and parsed, bypassing the cache: what a check reads, so a damaged object is never
     * hidden by a copy read earlier.
     *
     * @throws io.tidemark.core.CorruptObjectException naming {@code key} when it cannot be decrypted or parsed
     */
    public Manifest parseManifest(String key, byte[] bytes) {
        return manifests.decode(key, bytes);
    }

    /**
     * Commits a restore point by making the objects stored so far durable and then writing its
     * manifest, after everything it references. Idempotent:
     * committing the same manifest twice leaves one.
     */
    public void commit(Manifest m) {
        target.flush(); // every chunk, page and root it refers to is durable before it is
        manifests.put(m);
    }

    /** The VMs that have restore points. */
    public List<String> vms() {
        return manifests.vms();
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
        return manifests.listing(vm);
    }

    /**
     * The readable restore points of {@code vm}, oldest first. A manifest that cannot be read is
     * left out and logged once per repository instance as a warning (see {@link #listing}).
     */
    public List<Manifest> manifests(String vm) {
        return manifests.manifests(vm);
    }

    /**
     * The restore point {@code id} of {@code vm}; empty when it does not exist.
     *
     * @throws io.tidemark.core.CorruptObjectException naming the manifest's key when it exists but cannot be read
     */
    public Optional<Manifest> manifest(String vm, String id) {
        return manifests.manifest(vm, id);
    }

    public boolean hasManifest(String vm, String id) {
        return manifests.has(vm, id);
    }

    /** The newest readable restore point of {@code vm}; an unreadable manifest is left out. */
    public Optional<Manifest> latest(String vm) {
        List<Manifest> all = manifests(vm);
        return all.isEmpty() ? Optional.empty() : Optional.of(all.get(all.size() - 1));
    }

    /** The restore point a job produced, if it committed one: the idempotency check of workers. */
    public Optional<Manifest> findByJob(String vm, String jobId) {
        return manifests(vm).stream().filter(m -> m.jobId().equals(jobId)).findFirst();
    }

    // ---- marks (Marks) ----

    /**
     * Sets the mark on restore point {@code id} of {@code vm}, replacing any mark it had. Crash-safe:
     * the new mark is written as the next version first, and only then are the older versions
     * removed, so a process killed (or a target failing) in between leaves both, and readers take
     * the newest; a mark is never lost to a crash. Two writers racing: the later version wins.
     */
    public void mark(String vm, String id, PointMark mark) {
        marks.mark(vm, id, mark);
    }

    /**
     * The marks on the restore points of {@code vm}, by restore point id: for each, the newest
     * version present (older ones remain only after a crash during {@link #mark}).
     */
    public Map<String, PointMark> marks(String vm) {
        return marks.marks(vm);
    }
}
