package io.tidemark.format;

/**
 * What an index entry names as its patch (ADR 15, ADR 26): a patch object, or the slot of a pack
 * of patches that holds the entry's patch among others of its page.
 *
 * @param object the patch's or the pack's digest; {@link Digest#ZERO} for no patch
 * @param slot the entry's slot in the pack (its index in the page), or -1 for a patch object
 */
public record PatchRef(Digest object, int slot) {

    /** No patch: the entry reads as its chunk alone. */
    public static final PatchRef NONE = new PatchRef(Digest.ZERO, -1);

    /** A standalone patch object (ADR 15). */
    public static PatchRef patch(Digest object) {
        return object.isZero() ? NONE : new PatchRef(object, -1);
    }

    public boolean isNone() {
        return object.isZero();
    }

    /** Whether the patch is a slot of a pack rather than an object of its own. */
    public boolean packed() {
        return slot >= 0;
    }
}
