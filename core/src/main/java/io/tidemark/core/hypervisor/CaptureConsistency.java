package io.tidemark.core.hypervisor;

import io.tidemark.core.event.ConsistencyAchieved;
import java.util.Objects;
import java.util.Optional;

/**
 * The consistency a capture achieved.
 *
 * @param level {@link ConsistencyAchieved#APPLICATION} (the guest's file systems were flushed and
 *     frozen across the snapshot moment) or {@link ConsistencyAchieved#CRASH} (what a power cut would
 *     leave)
 * @param reason why the capture is only crash-consistent although application consistency was
 *     asked for; empty otherwise
 */
public record CaptureConsistency(ConsistencyAchieved level, Optional<String> reason) {

    public CaptureConsistency {
        Objects.requireNonNull(level, "level");
        Objects.requireNonNull(reason, "reason");
        if (level == ConsistencyAchieved.APPLICATION && reason.isPresent()) {
            throw new IllegalArgumentException("an application-consistent capture needs no reason");
        }
    }

    /** Crash-consistent because nothing else was asked for. */
    public static CaptureConsistency crash() {
        return new CaptureConsistency(ConsistencyAchieved.CRASH, Optional.empty());
    }

    /** Crash-consistent although application consistency was preferred, and why. */
    public static CaptureConsistency crash(String reason) {
        return new CaptureConsistency(ConsistencyAchieved.CRASH, Optional.of(reason));
    }

    public static CaptureConsistency application() {
        return new CaptureConsistency(ConsistencyAchieved.APPLICATION, Optional.empty());
    }

    public boolean isApplication() {
        return level == ConsistencyAchieved.APPLICATION;
    }
}
