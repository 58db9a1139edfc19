package io.tidemark.core.hypervisor;

import java.time.Duration;

/**
 * The agent inside one guest that can flush and freeze its file systems (QEMU's guest agent is
 * the adapter {@code QgaGuestAgent}). Every call gives up after its deadline.
 *
 * <p>Errors: an agent that does not answer in time, or whose channel is missing or closed, is a
 * {@link io.tidemark.core.RetriableException}; an agent that answers with an error (the command is
 * disabled, the freeze failed in the guest) is a {@link io.tidemark.core.PermanentException}. Both
 * messages name the VM and the channel.
 */
public interface GuestAgent {

    /** What the guest's file systems are. */
    enum FreezeStatus {
        THAWED,
        FROZEN
    }

    /** Returns once the agent answered; throws when it does not within {@code deadline}. */
    void ping(Duration deadline);

    /** Whether the guest's file systems are frozen now. */
    FreezeStatus status(Duration deadline);

    /**
     * Flushes and freezes every freezable file system of the guest; writes in the guest block until
     * {@link #thaw}.
     *
     * @return how many file systems were frozen
     */
    int freeze(Duration deadline);

    /**
     * Thaws the guest's file systems. Thawing a guest that is not frozen is allowed and returns 0.
     *
     * @return how many file systems were thawed
     */
    int thaw(Duration deadline);

    /** Where the agent is reached, for messages (for example the socket path). */
    String describe();
}
