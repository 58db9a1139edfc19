package io.tidemark.core.event;

import java.time.Instant;

/**
 * A restore point is committed on a replication target (its manifest was written there last).
 * {@code capturedAt} is the restore point's snapshot moment, from which the target's RPO is measured.
 */
public record ReplicaCommitted(
        String vm, String restorePointId, String target, Instant capturedAt, long objectsSent, long bytesSent)
        implements EventPayload {}
