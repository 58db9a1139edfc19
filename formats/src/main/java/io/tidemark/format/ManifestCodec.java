package io.tidemark.format;

import com.fasterxml.jackson.core.JsonProcessingException;
import io.tidemark.core.CorruptObjectException;
import io.tidemark.core.repository.Manifest;
import java.io.IOException;

/** Manifests are pretty-printed JSON so an operator can read them with {@code cat}. */
public final class ManifestCodec {

    private ManifestCodec() {}

    public static byte[] encode(Manifest m) {
        try {
            return Json.mapper().writerWithDefaultPrettyPrinter().writeValueAsBytes(m);
        } catch (JsonProcessingException e) {
            throw new IllegalStateException("cannot encode manifest " + m.id(), e);
        }
    }

    public static Manifest decode(String key, byte[] bytes) {
        Manifest m;
        try {
            m = Json.mapper().readValue(bytes, Manifest.class);
        } catch (IOException e) {
            throw new CorruptObjectException(key, "unreadable manifest: " + e.getMessage());
        }
        if (m.formatVersion() > FormatConstants.REPOSITORY_FORMAT_VERSION) {
            throw new CorruptObjectException(
                    key, "manifest format " + m.formatVersion() + " is newer than this Tidemark understands; upgrade");
        }
        return m;
    }
}
