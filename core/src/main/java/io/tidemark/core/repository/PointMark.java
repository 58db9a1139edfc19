package io.tidemark.core.repository;

import java.time.Instant;
import java.util.Map;
import java.util.Objects;

/**
 * A mutable mark on one restore point at one location, kept apart from the immutable manifest
 * (under {@code state/}): a deploy that failed pins its pre-deploy points so retention keeps them
 * for a rollback; one that succeeded expires them so they do not hold storage longer than needed.
 *
 * @param kind what the mark does to retention
 * @param reason why, in words, such as {@code deploy of shop 4f2a9c1 failed}
 * @param at when the mark was set
 * @param attributes what set it, such as the app, commit and pipeline of a post-deploy hook
 */
public record PointMark(Kind kind, String reason, Instant at, Map<String, String> attributes) {

    /** What a mark does to retention. */
    public enum Kind {
        /** Kept whatever the retention rule says, until the mark is replaced. */
        PINNED,
        /** Not counted by the retention rule: removed by the next prune unless something else keeps it. */
        EXPIRED
    }

    public PointMark {
        Objects.requireNonNull(kind, "kind");
        Objects.requireNonNull(reason, "reason");
        Objects.requireNonNull(at, "at");
        attributes = Map.copyOf(attributes);
    }
}
