package io.tidemark.format;

import com.fasterxml.jackson.core.JsonProcessingException;
import io.tidemark.core.CorruptObjectException;
import java.io.IOException;

/**
 * The repository's fixed parameters, stored once under {@link ObjectKeys#CONFIG}.
 *
 * @param formatVersion layout version
 * @param chunkSize bytes per chunk; a multiple of 64 KiB (the dirty-bitmap granularity)
 * @param entriesPerPage digests per index page
 */
public record RepositoryConfig(int formatVersion, int chunkSize, int entriesPerPage) {

    /** Objects are uploaded in one request (see docs/adr/0004-no-multipart-uploads.md). */
    public static final int MAX_CHUNK_SIZE = 64 << 20;

    public RepositoryConfig {
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
        return c;
    }
}
