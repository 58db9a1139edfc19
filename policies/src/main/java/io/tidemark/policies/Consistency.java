package io.tidemark.policies;

import java.util.Arrays;
import java.util.Optional;

/** The point-in-time consistency a policy asks for. */
public enum Consistency {
    /** Disks captured atomically without the guest's help, as after a power cut. The default. */
    CRASH("crash"),
    /** Freeze the guest's file systems through its agent when there is one; otherwise crash-consistent. */
    APPLICATION_PREFERRED("application-preferred"),
    /** Freeze the guest's file systems through its agent, or fail the job. */
    APPLICATION_REQUIRED("application-required");

    private final String yamlName;

    Consistency(String yamlName) {
        this.yamlName = yamlName;
    }

    /** The spelling used in policy files, such as {@code application-preferred}. */
    public String yamlName() {
        return yamlName;
    }

    /** The constant spelled {@code yamlName} in policy files, if any. */
    public static Optional<Consistency> fromYamlName(String yamlName) {
        return Arrays.stream(values()).filter(c -> c.yamlName.equals(yamlName)).findFirst();
    }
}
