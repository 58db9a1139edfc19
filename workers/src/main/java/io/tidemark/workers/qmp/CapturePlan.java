package io.tidemark.workers.qmp;

import com.fasterxml.jackson.databind.node.JsonNodeFactory;
import com.fasterxml.jackson.databind.node.ObjectNode;
import io.tidemark.core.RetriableException;
import io.tidemark.core.event.FullReason;
import io.tidemark.workers.qmp.BlockDevice.Bitmap;
import java.util.ArrayList;
import java.util.List;
import java.util.Optional;

/**
 * The pure decisions of one capture, made from a {@code query-block} snapshot: which disks are
 * incremental (and why the others are full), and which leftovers of an interrupted capture to
 * repair first. Nothing here talks to QEMU.
 */
final class CapturePlan {

    /**
     * Granularity of the dirty bitmaps this engine creates: 16 KiB (ADR 15), so a scattered 4 KiB
     * write costs a 16 KiB read and patch rather than a 64 KiB one. QEMU keeps one bit per granule
     * in memory, 8 MiB per TiB of disk per bitmap (two while a capture runs). Bitmaps made with
     * another granularity (an older engine, another tool) are read at theirs.
     */
    static final int GRANULARITY = 16 * 1024;

    private static final JsonNodeFactory JSON = JsonNodeFactory.instance;

    private CapturePlan() {}

    /**
     * What one capture does with one disk.
     *
     * @param fullReason empty for an incremental disk
     * @param sinceExists whether the {@code sinceCheckpoint} bitmap exists on the node (in any state)
     * @param persistent whether the new checkpoint bitmap is made persistent
     */
    record Disk(BlockDevice device, Optional<FullReason> fullReason, boolean sinceExists, boolean persistent) {
        boolean incremental() {
            return fullReason.isEmpty();
        }

        Disk withoutPersistence() {
            return new Disk(device, fullReason, sinceExists, false);
        }
    }

    /** Decides per disk between incremental (usable checkpoint) and full (with the reason). */
    static Disk plan(BlockDevice d, Optional<String> since) {
        Optional<Bitmap> bm = since.flatMap(d::bitmap);
        return new Disk(d, fullReason(d, since, bm), bm.isPresent(), d.canPersistBitmaps());
    }

    private static Optional<FullReason> fullReason(BlockDevice d, Optional<String> since, Optional<Bitmap> bm) {
        if (since.isEmpty()) {
            return full(FullReason.Kind.FIRST_BACKUP, "first backup: there is no parent checkpoint");
        }
        String s = since.get();
        String node = "node '" + d.node() + "'";
        String cannotPersist = node + " (" + d.imageDescription() + ") cannot store persistent bitmaps";
        if (bm.isEmpty()) {
            return full(
                    FullReason.Kind.CHECKPOINT_MISSING,
                    "checkpoint " + s + " missing on " + node
                            + (d.canPersistBitmaps()
                                    ? " (QEMU stopped uncleanly before it ever stored the bitmap, the bitmap was"
                                            + " removed, or the disk was replaced)"
                                    : "; " + cannotPersist + ", so checkpoints do not survive a QEMU restart"));
        }
        Bitmap b = bm.get();
        if (b.inconsistent()) {
            return full(
                    FullReason.Kind.CHECKPOINT_INCONSISTENT,
                    "checkpoint " + s + " inconsistent (QEMU was not shut down cleanly)");
        }
        // A checkpoint that is not persistent (raw, qcow2 v2, rbd) is as good as a persistent one while
        // it exists: it lives only in this QEMU process, so finding it means the process that started
        // it at the parent's instant has recorded every write since (a restart loses it: missing above).
        if (b.busy()) {
            throw new RetriableException("checkpoint " + s + " on " + node + " of disk " + d.disk()
                    + " is in use by another block job or export; retry when it has finished");
        }
        if (!b.recording()) {
            return full(
                    FullReason.Kind.CHECKPOINT_DISABLED,
                    "checkpoint " + s + " was found disabled, so it may miss changes"
                            + " (an earlier capture was interrupted)");
        }
        return Optional.empty();
    }

    private static Optional<FullReason> full(FullReason.Kind kind, String detail) {
        return Optional.of(FullReason.of(kind, detail));
    }

    /**
     * The {@code transaction} actions that repair what an interrupted capture of ours left behind, so
     * that no change is lost and the new checkpoint can be added:
     *
     * <ul>
     *   <li>When {@code since} is disabled (a capture disabled it and never finished), the bitmaps
     *       of ours that kept recording since then are merged into it and it is re-enabled.
     *   <li>Every other bitmap of ours ({@code prefix}, or named {@code newCheckpoint}) is removed.
     *       Bitmaps of other tools are left alone.
     * </ul>
     */
    static List<ObjectNode> repairActions(
            List<BlockDevice> devices, Optional<String> since, String newCheckpoint, String prefix) {
        List<ObjectNode> actions = new ArrayList<>();
        for (BlockDevice d : devices) {
            List<Bitmap> stale = d.bitmaps().stream()
                    .filter(b -> b.name().isPresent())
                    .filter(b -> {
                        String n = b.name().get();
                        return (n.startsWith(prefix) || n.equals(newCheckpoint))
                                && !since.filter(n::equals).isPresent();
                    })
                    .toList();
            Optional<Bitmap> sinceBm = since.flatMap(d::bitmap);
            if (sinceBm.isPresent()
                    && !sinceBm.get().recording()
                    && !sinceBm.get().inconsistent()
                    && !sinceBm.get().busy()) {
                List<String> recording = stale.stream()
                        .filter(b -> b.recording() && !b.inconsistent())
                        .map(b -> b.name().get())
                        .toList();
                if (!recording.isEmpty()) {
                    actions.add(action("block-dirty-bitmap-merge", merge(d.node(), since.get(), recording)));
                    actions.add(action("block-dirty-bitmap-enable", bitmapAction(d.node(), since.get())));
                }
            }
            for (Bitmap b : stale) {
                actions.add(action(
                        "block-dirty-bitmap-remove",
                        bitmapAction(d.node(), b.name().get())));
            }
        }
        return actions;
    }

    static ObjectNode action(String type, ObjectNode data) {
        ObjectNode a = JSON.objectNode();
        a.put("type", type);
        a.set("data", data);
        return a;
    }

    static ObjectNode merge(String node, String target, List<String> sources) {
        ObjectNode m = JSON.objectNode().put("node", node).put("target", target);
        sources.forEach(m.putArray("bitmaps")::add);
        return m;
    }

    static ObjectNode bitmapAction(String node, String name) {
        return JSON.objectNode().put("node", node).put("name", name);
    }
}
