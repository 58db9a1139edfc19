package io.tidemark.scheduler;

import java.time.Instant;
import java.util.List;
import java.util.Objects;

/**
 * What one firing of a policy did.
 *
 * @param policy the policy's name
 * @param scheduledFor the fire time; part of every job id
 * @param jobIds the ids of the snapshot jobs published, in VM-name order
 * @param failedVms VMs whose job could not be published (the failure is logged)
 */
public record Firing(String policy, Instant scheduledFor, List<String> jobIds, List<String> failedVms) {
    public Firing {
        Objects.requireNonNull(policy, "policy");
        Objects.requireNonNull(scheduledFor, "scheduledFor");
        jobIds = List.copyOf(jobIds);
        failedVms = List.copyOf(failedVms);
    }
}
