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
