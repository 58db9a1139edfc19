package io.tidemark.core.hypervisor;

import java.util.Optional;

/** Whether a capture should freeze the guest's file systems around its snapshot moment. */
public enum Quiesce {
    /** Crash-consistent: never ask the guest. */
    NONE,
    /** Freeze when a guest agent answers; otherwise capture crash-consistent and say why. */
    PREFERRED,
    /** Freeze or fail: without an answering agent there is no capture. */
    REQUIRED;

    /**
     * From a policy's consistency spelling ({@code crash}, {@code application-preferred}, {@code
     * application-required}); empty or unknown means {@link #NONE}.
     */
    public static Quiesce fromPolicy(Optional<String> consistency) {
        return switch (consistency.orElse("crash")) {
            case "application-preferred" -> PREFERRED;
            case "application-required" -> REQUIRED;
            default -> NONE;
        };
    }
}
