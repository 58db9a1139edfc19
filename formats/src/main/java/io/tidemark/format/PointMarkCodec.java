package io.tidemark.format;

import com.fasterxml.jackson.core.JsonProcessingException;
import io.tidemark.core.CorruptObjectException;
import io.tidemark.core.repository.PointMark;
import java.io.IOException;

/** Marks on restore points are pretty-printed JSON under {@code state/marks/}, like manifests. */
public final class PointMarkCodec {

    private PointMarkCodec() {}

    public static byte[] encode(PointMark mark) {
        try {
            return Json.mapper().writerWithDefaultPrettyPrinter().writeValueAsBytes(mark);
        } catch (JsonProcessingException e) {
            throw new IllegalStateException("cannot encode a point mark", e);
        }
    }

    public static PointMark decode(String key, byte[] bytes) {
        try {
            return Json.mapper().readValue(bytes, PointMark.class);
        } catch (IOException e) {
            throw new CorruptObjectException(key, "unreadable point mark: " + e.getMessage());
        }
    }
}
