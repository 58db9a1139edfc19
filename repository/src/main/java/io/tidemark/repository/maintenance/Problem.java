package io.tidemark.repository.maintenance;

import java.util.List;

/**
 * One thing wrong in a repository.
 *
 * @param key the object's key
 * @param kind what is wrong
 * @param detail why, in words (the integrity error, or what the target said)
 * @param affected the restore points that cannot be restored while it is wrong, sorted
 */
public record Problem(String key, Kind kind, String detail, List<PointRef> affected) {

    public Problem {
        affected = List.copyOf(affected);
    }

    /** The kinds of problems {@link Verifier} finds. */
    public enum Kind {
        /** A referenced object is not on the target. */
        MISSING,
        /** An object is there but fails its integrity check (digest, framing). */
        CORRUPT,
        /** A manifest that cannot be parsed. */
        BAD_MANIFEST
    }
}
