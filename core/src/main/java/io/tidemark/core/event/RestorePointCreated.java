package io.tidemark.core.event;

import java.time.Instant;
import java.util.List;

/** A restore point is committed in the primary repository (its manifest exists). */
public record RestorePointCreated(
        String vm,
        String restorePointId,
        String policy,
        List<String> targets,
        Instant capturedAt,
        long bytesRead,
        long bytesNew)
        implements EventPayload {
    public RestorePointCreated {
        targets = List.copyOf(targets);
    }
}
