package io.tidemark.workers.mirror;

import java.nio.file.Path;
import java.time.Duration;
import java.time.Instant;
import java.util.Optional;

/**
 * One restore point of a continuously protected VM, kept at the DR site as a qcow2 file whose backing
 * chain holds the earlier points (ADR 19).
 *
 * @param id time-sortable, {@code p-<epoch millis>}
 * @param createdAt when the point-in-time copy of the replica began
 * @param mirrorInSync whether the mirror was in sync then: if so the point holds every guest write
 *     completed before {@code createdAt}
 * @param mirrorLag the mirror's lag then: the point may lack guest writes of at most this age
 * @param parent the point this one's file is backed by; empty for a full copy
 * @param file the point's qcow2 file at the DR site
 */
public record DrPoint(
        String id,
        String vm,
        Instant createdAt,
        boolean mirrorInSync,
        Duration mirrorLag,
        Optional<String> parent,
        Path file) {}
