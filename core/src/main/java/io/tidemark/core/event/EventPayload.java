package io.tidemark.core.event;

/** The payloads the engine exchanges; each has a stable wire name in the formats module. */
public sealed interface EventPayload
        permits SnapshotJob,
                SnapshotCaptured,
                RestorePointCreated,
                ReplicaCommitted,
                JobFailed,
                RpoViolated,
                PreDeployRequested,
                VmPlaced,
                VmGone,
                BudgetExceeded {

    /** The VM the event is about. */
    String vm();
}
