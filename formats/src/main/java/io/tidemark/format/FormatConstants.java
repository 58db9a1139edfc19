package io.tidemark.format;

/**
 * Every magic number and version of the repository and wire formats, in one place.
 *
 * <p>Binary objects start with a 4-byte magic and a 1-byte version. A reader refuses a version
 * newer than the one it knows with an error that says to upgrade Tidemark.
 */
public final class FormatConstants {

    /** Version of the repository layout (config, keys, manifest, index). */
    public static final int REPOSITORY_FORMAT_VERSION = 1;

    /** Version of the event envelope on the bus. */
    public static final int EVENT_FORMAT_VERSION = 1;

    /** Framing of every content-addressed object (chunk, index page, index root): "TMOB". */
    public static final int OBJECT_MAGIC = 0x544D4F42;

    public static final int OBJECT_VERSION = 1;

    /** Object header: magic (4), version (1), codec (1), flags (1), reserved (1), plaintext length (4). */
    public static final int OBJECT_HEADER_BYTES = 12;

    /**
     * Object flag bit 0: the payload is AES-256-GCM encrypted. The 12-byte header is then followed by
     * a {@value #GCM_NONCE_BYTES}-byte random nonce, the ciphertext (as long as the payload), and a
     * {@value #GCM_TAG_BYTES}-byte tag; the additional authenticated data is the header followed by
     * the object's key in UTF-8, so an object moved to another name or kind fails to decrypt.
     */
    public static final byte FLAG_ENCRYPTED = 1;

    public static final int GCM_NONCE_BYTES = 12;
    public static final int GCM_TAG_BYTES = 16;

    /** Bytes added by encryption to an object: nonce and tag. */
    public static final int ENCRYPTION_OVERHEAD_BYTES = GCM_NONCE_BYTES + GCM_TAG_BYTES;

    /** The cipher of encrypted repositories, as named in the config's {@code encryption} section. */
    public static final String CIPHER_AES_256_GCM = "AES-256-GCM";

    /** How an encrypted repository names content: HMAC-SHA256 under the id key. */
    public static final String NAMES_HMAC_SHA256 = "HMAC-SHA256";

    /** Each of the two master keys (data key, id key): 256 bits. */
    public static final int MASTER_KEY_BYTES = 32;

    /** Version of a key object ({@code keys/<id>}: master keys wrapped by a passphrase-derived key). */
    public static final int KEY_FORMAT_VERSION = 1;

    /** The key derivation function of key objects (JCA name). */
    public static final String KDF_PBKDF2_SHA256 = "PBKDF2WithHmacSHA256";

    /** Default PBKDF2-HMAC-SHA256 iterations: OWASP's 2023 recommendation. */
    public static final int DEFAULT_KDF_ITERATIONS = 600_000;

    /** The fewest iterations a key object may have (tests use this to stay fast). */
    public static final int MIN_KDF_ITERATIONS = 1_000;

    public static final int KDF_SALT_BYTES = 32;

    /** Additional authenticated data of wrapped master keys. */
    public static final String KEY_WRAP_AAD = "tidemark key v1";

    /** The constant whose HMAC under the id key is the config's {@code keyCheck}. */
    public static final String KEY_CHECK_INPUT = "tidemark key check v1";

    public static final byte CODEC_NONE = 0;
    public static final byte CODEC_ZSTD = 1;

    /** Index page payload: "TMIP", version (1), 3 reserved, entry count (4), then 32-byte digests. */
    public static final int PAGE_MAGIC = 0x544D4950;

    /**
     * Index root payload: "TMIR", version (1), 3 reserved, disk size (8), chunk size (4), entries per
     * page (4), page count (4), then 32-byte page digests.
     */
    public static final int ROOT_MAGIC = 0x544D4952;

    public static final int PAGE_HEADER_BYTES = 12;

    /**
     * Version of an index page that has patches (ADR 15): the version 1 layout followed by a patch
     * table — patch count (4, at least 1), then per patched entry its index (4, increasing) and the
     * patch's 32-byte digest. A page without patches is still written as version 1.
     */
    public static final int PAGE_VERSION_PATCHES = 2;

    /** One entry of a page's patch table: entry index (4) and patch digest (32). */
    public static final int PAGE_PATCH_ENTRY_BYTES = 4 + 32;

    /**
     * Chunk patch payload (ADR 15): "TMPA", version (1), 3 reserved, base digest (32), chunk length
     * (4), range count (4), then per range offset (4) and length (4) within the chunk, increasing and
     * not touching, then the ranges' bytes in order. Stored as a content-addressed object under
     * {@code chunks/} (framed, compressed and encrypted like a chunk), named by its payload.
     */
    public static final int PATCH_MAGIC = 0x544D5041;

    public static final int PATCH_VERSION = 1;

    public static final int PATCH_HEADER_BYTES = 4 + 4 + 32 + 4 + 4;

    /**
     * Version of an index page whose patches are held in packs (ADR 26): the version 1 layout, then an
     * object table — count (4, at least 1), then per object its 32-byte digest, its kind (1: {@link
     * #PAGE_OBJECT_PATCH} or {@link #PAGE_OBJECT_PACK}), 3 reserved and, for a pack, the bytes of all
     * its slots (4; 0 for a patch) — then a patch table — count (4, at least 1), then per patched entry
     * its index (4, increasing), the ordinal of its object in the object table (4) and the bytes of its
     * slot in that pack (4; 0 for a patch). A page whose patches are all standalone is still written
     * as version 2, and one with none as version 1.
     */
    public static final int PAGE_VERSION_PACKS = 3;

    /** Object table kind of a standalone patch ({@link #PATCH_MAGIC}). */
    public static final int PAGE_OBJECT_PATCH = 0;

    /** Object table kind of a pack of patches ({@link #PACK_MAGIC}). */
    public static final int PAGE_OBJECT_PACK = 1;

    /** One object of a version 3 page's object table: digest (32), kind (1), reserved (3), bytes (4). */
    public static final int PAGE_OBJECT_ENTRY_BYTES = 32 + 4 + 4;

    /** One entry of a version 3 page's patch table: entry index (4), object ordinal (4), slot bytes (4). */
    public static final int PAGE_PACKED_ENTRY_BYTES = 4 + 4 + 4;

    /**
     * Pack of patches payload (ADR 26): "TMPK", version (1), 3 reserved, slot count (4, at least 1),
     * then per slot the index of the page entry it patches (4, increasing) and its length (4), then the
     * slots in order, each a whole chunk patch payload ({@link #PATCH_MAGIC}). Stored as a
     * content-addressed object under {@code chunks/} like a chunk; the patches of one index page of one
     * backup go into packs of at most {@link #PACK_MAX_BYTES} slot bytes.
     */
    public static final int PACK_MAGIC = 0x544D504B;

    public static final int PACK_VERSION = 1;

    public static final int PACK_HEADER_BYTES = 4 + 4 + 4;

    /** One slot of a pack's table: entry index (4) and slot length (4). */
    public static final int PACK_SLOT_ENTRY_BYTES = 4 + 4;

    /**
     * The most slot bytes a backup puts in one pack (1 MiB): a reader holds a few decoded packs, and a
     * page that an incremental patches all over costs a few packs instead of one object per chunk.
     */
    public static final int PACK_MAX_BYTES = 1 << 20;

    public static final int ROOT_HEADER_BYTES = 28;

    /** Size of a digest (SHA-256). The all-zero digest stands for an all-zero chunk, never stored. */
    public static final int DIGEST_BYTES = 32;

    /**
     * Default chunk size: 4 × the 64 KiB dirty-bitmap granularity. Small enough that scattered
     * 64 KiB writes cost at most 4× in new data, large enough to keep object counts sane; see
     * docs/adr/0002-chunk-size-and-two-level-index.md.
     */
    public static final int DEFAULT_CHUNK_SIZE = 256 * 1024;

    /** Default digests per index page: one page covers 256 MiB of disk at the default chunk size. */
    public static final int DEFAULT_PAGE_ENTRIES = 1024;

    /** zstd level for chunks: fast, since the pipeline is CPU-bound on two cores. */
    public static final int ZSTD_LEVEL = 1;

    private FormatConstants() {}
}
