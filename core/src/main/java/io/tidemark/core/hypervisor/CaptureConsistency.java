package io.tidemark.core.hypervisor;

import java.util.Objects;
import java.util.Optional;

/**
 * The consistency a capture achieved.
 *
 * @param level {@value #APPLICATION} (the guest's file systems were flushed and frozen across the
 *     snapshot moment) or {@value #CRASH} (what a power cut would leave)
 * @param reason why the capture is only crash-consistent although application consistency was
 *     asked for; empty otherwise
 */
public record CaptureConsistency(String level, Optional<String> reason) {

    public static final String APPLICATION = "application";
    public static final String CRASH = "crash";

    public CaptureConsistency {
        Objects.requireNonNull(reason, "reason");
        if (!level.equals(APPLICATION) && !level.equals(CRASH)) {
            throw new IllegalArgumentException("consistency level must be application or crash, not " + level);
        }
        if (level.equals(APPLICATION) && reason.isPresent()) {
            throw new IllegalArgumentException("an application-consistent capture needs no reason");
        }
    }

    /** Crash-consistent because nothing else was asked for. */
    public static CaptureConsistency crash() {
        return new CaptureConsistency(CRASH, Optional.empty());
    }

    /** Crash-consistent although application consistency was preferred, and why. */
    public static CaptureConsistency crash(String reason) {
        return new CaptureConsistency(CRASH, Optional.of(reason));
    }

    public static CaptureConsistency application() {
        return new CaptureConsistency(APPLICATION, Optional.empty());
    }

    public boolean isApplication() {
        return level.equals(APPLICATION);
    }
}
