package io.tidemark.recovery;

/**
 * What a recovery use case reports while it works, so that a caller can show it (the CLI draws a
 * progress bar on a terminal and nothing for {@code --json}); the use cases never print. Called from
 * the use case's threads, possibly several at once: implementations must be thread-safe and quick.
 */
public interface RecoveryProgress {

    /** Reports nothing. */
    RecoveryProgress NONE = new RecoveryProgress() {};

    /**
     * {@code done} of {@code total} bytes of the step named {@code label} are restored (a failover
     * group, a VM's disk, a drill's disk); {@code done == total} when the step ends.
     */
    default void restored(String label, long done, long total) {}

    /** A step that takes a while and shows no bytes is starting, such as a check guest's boot. */
    default void starting(String what) {}
}
