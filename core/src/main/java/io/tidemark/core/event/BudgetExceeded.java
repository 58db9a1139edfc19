package io.tidemark.core.event;

/**
 * A VM's restore points at a location occupy more than its policy's capacity budget there, even
 * after removing every point the budget lets prune remove: the newest point did not fit. Raised
 * once per newest point; {@code location} is {@code local} or a replication target's name. Sizes
 * are counted as docs/design.md §6 says: the distinct non-zero chunks the VM's points reference,
 * at their size before compression.
 *
 * @param vm the VM
 * @param location {@code local} or a target name
 * @param policy the policy that sets the budget
 * @param budgetBytes the budget
 * @param usedBytes what the VM's points that must stay occupy there
 * @param neededBytes what the newest point occupies that no other point kept there shares: the
 *     space it needed
 * @param restorePointId the newest point, the one that did not fit
 * @param held why the points that stay could not go (pinned, not yet replicated, locked, newest)
 */
public record BudgetExceeded(
        String vm,
        String location,
        String policy,
        long budgetBytes,
        long usedBytes,
        long neededBytes,
        String restorePointId,
        String held)
        implements EventPayload {}
