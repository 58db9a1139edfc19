package io.tidemark.core.event;

import java.util.Arrays;
import java.util.Objects;
import java.util.Optional;

/**
 * Why a backup read a whole disk instead of only the extents changed since its parent: a {@link
 * Kind} that code and tools can branch on, and the words an operator reads (which node, which
 * checkpoint, what to do). Produced by the capture adapters (QMP, libvirt) and by the worker;
 * recorded per disk in the manifest ({@code DiskEntry.fullReason}).
 *
 * @param kind what happened
 * @param detail the operator's explanation, as written in the manifest's {@code fullReason}
 */
public record FullReason(Kind kind, String detail) {

    /** What made a backup read a whole disk. Spellings are the manifest's {@code fullReasonKind}. */
    public enum Kind {
        /** No parent checkpoint: the VM's first backup (or its first at this location of the chain). */
        FIRST_BACKUP("first-backup"),
        /** The parent checkpoint's bitmap is not on the disk (unclean stop before it was stored, removed, disk replaced). */
        CHECKPOINT_MISSING("checkpoint-missing"),
        /** The parent checkpoint's bitmap is marked inconsistent (QEMU was not shut down cleanly). */
        CHECKPOINT_INCONSISTENT("checkpoint-inconsistent"),
        /** The parent checkpoint was found disabled: an earlier capture was interrupted, it may miss changes. */
        CHECKPOINT_DISABLED("checkpoint-disabled"),
        /** The disk cannot store persistent bitmaps (raw, qcow2 v2): every backup of it is full. */
        NO_PERSISTENT_BITMAPS("no-persistent-bitmaps"),
        /** The hypervisor exported the disk without a dirty bitmap. */
        NO_DIRTY_BITMAP("no-dirty-bitmap"),
        /** The policy's {@code full-every} asked for a full backup. */
        FULL_EVERY("full-every"),
        /** The parent restore point has no usable index of this disk (new disk, or resized). */
        NO_PARENT_INDEX("no-parent-index"),
        /** The parent index has another geometry (chunk size or entries per page). */
        PARENT_GEOMETRY("parent-geometry"),
        /**
         * Read from a manifest written before kinds were recorded, or with a kind this version does
         * not know: only the {@link FullReason#detail() detail} says why.
         */
        UNRECORDED("unrecorded");

        private final String spelling;

        Kind(String spelling) {
            this.spelling = spelling;
        }

        /** The kind as written in manifests, such as {@code first-backup}. */
        public String spelling() {
            return spelling;
        }

        /** The kind of {@code spelling}; empty for a spelling this version does not know. */
        public static Optional<Kind> fromSpelling(String spelling) {
            return Arrays.stream(values())
                    .filter(k -> k.spelling.equals(spelling))
                    .findFirst();
        }
    }

    public FullReason {
        Objects.requireNonNull(kind, "kind");
        Objects.requireNonNull(detail, "detail");
    }

    /** A reason of {@code kind} explained by {@code detail}. */
    public static FullReason of(Kind kind, String detail) {
        return new FullReason(kind, detail);
    }

    /** The detail: what logs and command output have always shown. */
    @Override
    public String toString() {
        return detail;
    }
}
