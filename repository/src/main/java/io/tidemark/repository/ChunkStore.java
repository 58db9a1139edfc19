package io.tidemark.repository;

import io.tidemark.core.PermanentException;
import io.tidemark.core.RetriableException;
import io.tidemark.core.target.ObjectTarget;
import io.tidemark.format.ChunkPatch;
import io.tidemark.format.Digest;
import io.tidemark.format.IndexPage;
import io.tidemark.format.IndexRoot;
import io.tidemark.format.MasterKeys;
import io.tidemark.format.ObjectCodec;
import io.tidemark.format.ObjectKeys;
import io.tidemark.format.PatchPack;
import io.tidemark.format.PatchRef;
import java.util.Arrays;
import java.util.LinkedHashMap;
import java.util.Map;
import java.util.concurrent.CompletableFuture;
import java.util.concurrent.CompletionException;

/**
 * The content-addressed objects of a repository: chunks, index pages and index roots. Each is
 * named by its content (SHA-256, or HMAC-SHA256 under the id key when encrypted), written once
 * (put-if-absent, made durable by the target's next flush) and verified against its name on every
 * read. Thread-safe: besides the target and the keys it keeps only the last few packs of patches it
 * read (ADR 26), which are immutable like every object here.
 */
final class ChunkStore {

    /**
     * Decoded packs kept for the next entries of the same page: at most this many, each at most
     * {@link io.tidemark.format.FormatConstants#PACK_MAX_BYTES} of slots.
     */
    static final int PACKS_KEPT = 16;

    private final ObjectTarget target;
    /** Null when the repository is not encrypted. */
    private final MasterKeys keys;

    /** Packs read or being read, least recently used first; each read once however many threads ask. */
    private final Map<Digest, CompletableFuture<PatchPack>> packs = new LinkedHashMap<>(32, 0.75f, true) {
        @Override
        protected boolean removeEldestEntry(Map.Entry<Digest, CompletableFuture<PatchPack>> eldest) {
            return size() > PACKS_KEPT;
        }
    };

    ChunkStore(ObjectTarget target, MasterKeys keys) {
        this.target = target;
        this.keys = keys;
    }

    /** See {@link Repository#putChunk}. */
    Repository.StoredChunk putChunk(byte[] plain, int length) {
        if (isAllZero(plain, length)) {
            return new Repository.StoredChunk(Digest.ZERO, false, 0);
        }
        Digest d = name(plain, length);
        String key = ObjectKeys.chunk(d);
        if (target.exists(key)) {
            return new Repository.StoredChunk(d, false, 0);
        }
        byte[] object = ObjectCodec.encode(plain, length, key, keys);
        boolean added = target.putIfAbsentDeferred(key, object); // durable at commit()
        return new Repository.StoredChunk(d, added, added ? object.length : 0);
    }

    byte[] chunk(Digest d, int length) {
        if (d.isZero()) {
            return new byte[length];
        }
        return readVerified(ObjectKeys.chunk(d), d);
    }

    /** See {@link Repository#putPatch}. */
    Repository.StoredChunk putPatch(ChunkPatch patch) {
        return putInChunks(patch.toBytes());
    }

    /** Stores {@code plain} (a patch or a pack) in the chunk key space unless it is there, named by its content. */
    private Repository.StoredChunk putInChunks(byte[] plain) {
        Digest d = name(plain, plain.length);
        String key = ObjectKeys.chunk(d);
        if (target.exists(key)) {
            return new Repository.StoredChunk(d, false, 0);
        }
        byte[] object = ObjectCodec.encode(plain, plain.length, key, keys);
        boolean added = target.putIfAbsentDeferred(key, object); // durable at commit()
        return new Repository.StoredChunk(d, added, added ? object.length : 0);
    }

    ChunkPatch patch(Digest d) {
        String key = ObjectKeys.chunk(d);
        return ChunkPatch.parse(key, readVerified(key, d));
    }

    /** The patch {@code ref} names: a patch object, or its slot of a pack. */
    ChunkPatch patch(PatchRef ref) {
        if (!ref.packed()) {
            return patch(ref.object());
        }
        return pack(ref.object()).slot(ObjectKeys.chunk(ref.object()), ref.slot());
    }

    /** See {@link Repository#putPack}. */
    Repository.StoredChunk putPack(PatchPack pack) {
        return putInChunks(pack.toBytes());
    }

    /** The pack {@code d}, read from the target now, verified and parsed. */
    PatchPack readPack(Digest d) {
        String key = ObjectKeys.chunk(d);
        return PatchPack.parse(key, readVerified(key, d));
    }

    /** The pack {@code d}, verified and parsed; read once while it stays among the last {@link #PACKS_KEPT}. */
    PatchPack pack(Digest d) {
        CompletableFuture<PatchPack> f;
        boolean mine = false;
        synchronized (packs) {
            f = packs.get(d);
            if (f == null) {
                f = new CompletableFuture<>();
                packs.put(d, f);
                mine = true;
            }
        }
        if (mine) {
            try {
                f.complete(readPack(d));
            } catch (RuntimeException e) {
                f.completeExceptionally(e);
                throw e;
            } finally {
                if (f.isCompletedExceptionally() || !f.isDone()) { // a failed read is not kept: the next one tries
                    synchronized (packs) {
                        packs.remove(d, f);
                    }
                    f.completeExceptionally(
                            new RetriableException("reading pack " + ObjectKeys.chunk(d) + " failed; retry"));
                }
            }
        }
        try {
            return f.join();
        } catch (CompletionException e) {
            throw e.getCause() instanceof RuntimeException re ? re : e;
        }
    }

    /** See {@link Repository#chunkInto}. */
    int chunkInto(Digest d, byte[] into, byte[] scratch) {
        String key = ObjectKeys.chunk(d);
        int n = target.read(key, scratch);
        if (n < 0) {
            throw missing(key);
        }
        if (n > scratch.length) { // larger than any chunk of this repository: decode says what is wrong
            byte[] object = target.get(key).orElseThrow(() -> missing(key));
            return ObjectCodec.decodeInto(key, object, object.length, d, keys, into);
        }
        return ObjectCodec.decodeInto(key, scratch, n, d, keys, into);
    }

    IndexPage page(Digest d) {
        String key = ObjectKeys.page(d);
        return IndexPage.parse(key, readVerified(key, d));
    }

    IndexRoot root(Digest d) {
        String key = ObjectKeys.root(d);
        return IndexRoot.parse(key, readVerified(key, d));
    }

    Digest putPage(IndexPage page) {
        return putAddressed(page.toBytes(), true);
    }

    Digest putRoot(IndexRoot root) {
        return putAddressed(root.toBytes(), false);
    }

    /** See {@link Repository#verify}. */
    void verify(String key, byte[] object, Digest d) {
        ObjectCodec.verify(key, object, d, keys);
    }

    /** Checks a stored object against the digest its key ends with. */
    void checkAddressed(String key, byte[] object) {
        verify(key, object, Digest.fromHex(key.substring(key.lastIndexOf('/') + 1)));
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
        byte[] object = target.get(key).orElseThrow(() -> missing(key));
        return ObjectCodec.decode(key, object, d, keys);
    }

    /** Zeros to compare with: {@link Arrays#mismatch} is vectorised, a byte loop with an early exit is not. */
    private static final byte[] ZEROS = new byte[64 << 10];

    private PermanentException missing(String key) {
        return new PermanentException("object " + key + " is missing from " + target.describe()
                + " (run `tidemark verify`; restore from another target if it holds the point)");
    }

    static boolean isAllZero(byte[] data, int length) {
        for (int from = 0; from < length; from += ZEROS.length) {
            int n = Math.min(ZEROS.length, length - from);
            if (Arrays.mismatch(data, from, from + n, ZEROS, 0, n) >= 0) {
                return false;
            }
        }
        return true;
    }
}
