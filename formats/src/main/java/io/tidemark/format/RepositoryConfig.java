package io.tidemark.format;

import com.fasterxml.jackson.annotation.JsonInclude;
import com.fasterxml.jackson.core.JsonProcessingException;
import io.tidemark.core.CorruptObjectException;
import java.io.IOException;
import java.util.Optional;

/**
 * The repository's fixed parameters, stored once under {@link ObjectKeys#CONFIG}.
 *
 * @param formatVersion layout version
 * @param chunkSize bytes per chunk; a multiple of 64 KiB (the dirty-bitmap granularity)
 * @param entriesPerPage digests per index page
 * @param encryption present when every object is encrypted; then the master keys are in key
 *     objects under {@link ObjectKeys#KEYS}
 */
public record RepositoryConfig(
        int formatVersion,
        int chunkSize,
        int entriesPerPage,
        @JsonInclude(JsonInclude.Include.NON_ABSENT) Optional<Encryption> encryption) {

    /**
     * How an encrypted repository is encrypted. Holds no secret.
     *
     * @param cipher {@link FormatConstants#CIPHER_AES_256_GCM}
     * @param names {@link FormatConstants#NAMES_HMAC_SHA256}
     * @param keyCheck {@link MasterKeys#keyCheck()} of the repository's master keys: which key
     *     objects belong to it, and whether two locations hold the same repository
     */
    public record Encryption(String cipher, String names, String keyCheck) {

        /** The encryption section for {@code keys}. */
        public static Encryption of(MasterKeys keys) {
            return new Encryption(
                    FormatConstants.CIPHER_AES_256_GCM, FormatConstants.NAMES_HMAC_SHA256, keys.keyCheck());
        }
    }

    /** Objects are uploaded in one request (see docs/adr/0004-no-multipart-uploads.md). */
    public static final int MAX_CHUNK_SIZE = 64 << 20;

    /** An unencrypted repository. */
    public RepositoryConfig(int formatVersion, int chunkSize, int entriesPerPage) {
        this(formatVersion, chunkSize, entriesPerPage, Optional.empty());
    }

    public RepositoryConfig {
        encryption = encryption == null ? Optional.empty() : encryption;
        if (chunkSize <= 0 || chunkSize % (64 * 1024) != 0 || chunkSize > MAX_CHUNK_SIZE) {
            throw new IllegalArgumentException(
                    "chunk size must be a multiple of 64 KiB up to 64 MiB (objects go up in one request), got "
                            + chunkSize);
        }
        if (entriesPerPage <= 0) {
            throw new IllegalArgumentException("entries per page must be positive");
        }
    }

    public static RepositoryConfig defaults() {
        return new RepositoryConfig(
                FormatConstants.REPOSITORY_FORMAT_VERSION,
                FormatConstants.DEFAULT_CHUNK_SIZE,
                FormatConstants.DEFAULT_PAGE_ENTRIES);
    }

    /** The same parameters, encrypted under {@code keys}. */
    public RepositoryConfig encryptedWith(MasterKeys keys) {
        return new RepositoryConfig(formatVersion, chunkSize, entriesPerPage, Optional.of(Encryption.of(keys)));
    }

    public boolean encrypted() {
        return encryption.isPresent();
    }

    public byte[] toBytes() {
        try {
            return Json.mapper().writerWithDefaultPrettyPrinter().writeValueAsBytes(this);
        } catch (JsonProcessingException e) {
            throw new IllegalStateException(e);
        }
    }

    public static RepositoryConfig parse(String key, byte[] bytes) {
        RepositoryConfig c;
        try {
            c = Json.mapper().readValue(bytes, RepositoryConfig.class);
        } catch (IOException e) {
            throw new CorruptObjectException(key, "unreadable repository config: " + e.getMessage());
        }
        if (c.formatVersion() > FormatConstants.REPOSITORY_FORMAT_VERSION) {
            throw new CorruptObjectException(
                    key,
                    "repository format " + c.formatVersion() + " is newer than this Tidemark understands; upgrade");
        }
        c.encryption().ifPresent(e -> {
            if (!FormatConstants.CIPHER_AES_256_GCM.equals(e.cipher())
                    || !FormatConstants.NAMES_HMAC_SHA256.equals(e.names())) {
                throw new CorruptObjectException(
                        key,
                        "encryption " + e.cipher() + " with " + e.names()
                                + " names is not supported by this Tidemark; upgrade");
            }
        });
        return c;
    }
}
