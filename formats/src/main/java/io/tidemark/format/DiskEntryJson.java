package io.tidemark.format;

import io.tidemark.core.event.FullReason;
import io.tidemark.core.repository.DiskEntry;
import java.util.Optional;

/**
 * A manifest's disk as written: {@link DiskEntry} with its {@link FullReason} as two fields, so a
 * manifest written before the kind existed reads, and a reader that knows only {@code fullReason}
 * still reads the words.
 *
 * <ul>
 *   <li>{@code fullReason}: the detail, as it always was (absent or null for an incremental disk).
 *   <li>{@code fullReasonKind}: the kind's spelling; absent in manifests written before it existed,
 *       which read as {@link FullReason.Kind#UNRECORDED}, as does a spelling this version does not
 *       know. {@code UNRECORDED} is written as absent (null), so re-encoding an old manifest adds
 *       nothing.
 * </ul>
 */
record DiskEntryJson(
        String name,
        long sizeBytes,
        int chunkSize,
        String index,
        String checkpoint,
        Optional<String> fullReason,
        Optional<String> fullReasonKind,
        long bytesRead,
        long bytesNew) {

    static DiskEntryJson of(DiskEntry d) {
        return new DiskEntryJson(
                d.name(),
                d.sizeBytes(),
                d.chunkSize(),
                d.index(),
                d.checkpoint(),
                d.fullReason().map(FullReason::detail),
                d.fullReason()
                        .map(FullReason::kind)
                        .filter(k -> k != FullReason.Kind.UNRECORDED)
                        .map(FullReason.Kind::spelling),
                d.bytesRead(),
                d.bytesNew());
    }

    DiskEntry toDiskEntry() {
        Optional<FullReason> reason = fullReason.map(detail -> new FullReason(
                fullReasonKind.flatMap(FullReason.Kind::fromSpelling).orElse(FullReason.Kind.UNRECORDED), detail));
        return new DiskEntry(name, sizeBytes, chunkSize, index, checkpoint, reason, bytesRead, bytesNew);
    }
}
