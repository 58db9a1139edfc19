package io.tidemark.core.event;

/** A restore point is committed on a replication target (its manifest was written there last). */
public record ReplicaCommitted(String vm, String restorePointId, String target, long objectsSent, long bytesSent)
        implements EventPayload {}
