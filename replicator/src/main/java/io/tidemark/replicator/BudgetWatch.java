package io.tidemark.replicator;

import io.tidemark.core.bus.EventBus;
import io.tidemark.core.bus.Topics;
import io.tidemark.core.event.BudgetExceeded;
import io.tidemark.core.event.Event;
import io.tidemark.policies.PolicySet;
import io.tidemark.repository.Repository;
import java.nio.charset.StandardCharsets;
import java.time.Clock;
import java.util.List;
import java.util.Map;
import java.util.Set;
import java.util.UUID;
import java.util.concurrent.ConcurrentHashMap;
import org.slf4j.Logger;
import org.slf4j.LoggerFactory;

/**
 * Measures every VM whose policy sets a capacity budget against it, at each location, as prune
 * would leave it ({@link Pruner#review}: what the budget lets prune remove is not counted), and
 * raises {@link BudgetExceeded} when the points that must stay still exceed the budget: the newest
 * point did not fit. One event per newest point, named by it (job id {@code
 * budget/<vm>@<location>/<point>}, event id derived from it), so every process that watches
 * publishes the same ids and a redelivery or a second watcher is recognised. The use of each
 * budget is kept in memory for metrics. Changes nothing: prune removes the points.
 */
public final class BudgetWatch {

    private static final Logger log = LoggerFactory.getLogger(BudgetWatch.class);

    private final Repository primary;
    private final Map<String, Repository> targets;
    private final Pruner.Locks locks;
    private final Clock clock;
    private final Set<String> announced = ConcurrentHashMap.newKeySet();
    /** The budgets already reported as smaller than one full point, by VM, location and size. */
    private final Set<String> tooSmall = ConcurrentHashMap.newKeySet();

    private volatile PolicySet policies;
    private volatile List<Pruner.BudgetUse> uses = List.of();

    /**
     * @param primary the local repository
     * @param targets the target repositories by name (a target that cannot be opened is left out)
     */
    public BudgetWatch(
            Repository primary, Map<String, Repository> targets, Pruner.Locks locks, PolicySet policies, Clock clock) {
        this.primary = primary;
        this.targets = Map.copyOf(targets);
        this.locks = locks;
        this.policies = policies;
        this.clock = clock;
    }

    /** The policies to measure against from now on (a reload). */
    public void setPolicies(PolicySet next) {
        policies = next;
    }

    /** The use of every budget at the last {@link #check}, from memory. */
    public List<Pruner.BudgetUse> uses() {
        return uses;
    }

    /**
     * Measures the budgets and publishes a {@link BudgetExceeded} for each newest point that did not
     * fit and was not announced yet. A publication that fails is tried again at the next check.
     *
     * @return the VMs over budget now
     */
    public List<Pruner.OverBudget> check(EventBus bus) {
        PolicySet current = policies;
        if (current.policies().stream().allMatch(p -> p.budgets().isEmpty())) {
            uses = List.of();
            return List.of();
        }
        Pruner.Plan plan = new Pruner(primary, targets, locks).reviewBudgets(current, clock.instant());
        uses = plan.budgets();
        for (Pruner.OverBudget o : plan.overBudget()) {
            if (o.fullPointBytes() > o.budgetBytes()
                    && tooSmall.add(o.vm() + "@" + o.location() + "=" + o.budgetBytes())) {
                log.error(
                        "the budget of policy {} at {} ({} bytes) is smaller than one full restore point of {} ({}"
                                + " bytes): it can never hold even the newest point; raise budget.{} (policy lint"
                                + " --config reports this before a merge)",
                        o.policy(),
                        o.location(),
                        o.budgetBytes(),
                        o.vm(),
                        o.fullPointBytes(),
                        o.location());
            }
            String jobId = "budget/" + o.vm() + "@" + o.location() + "/" + o.newestPointId();
            if (!announced.add(jobId)) {
                continue;
            }
            try {
                bus.publish(
                        Topics.JOB_STATUS,
                        o.vm(),
                        new Event(
                                UUID.nameUUIDFromBytes(jobId.getBytes(StandardCharsets.UTF_8))
                                        .toString(),
                                jobId,
                                clock.instant(),
                                new BudgetExceeded(
                                        o.vm(),
                                        o.location(),
                                        o.policy(),
                                        o.budgetBytes(),
                                        o.usedBytes(),
                                        o.neededBytes(),
                                        o.newestPointId(),
                                        o.held())));
            } catch (RuntimeException e) { // the bus is down: the next check publishes it
                announced.remove(jobId);
                log.warn("budget excess of {} at {} not published yet: {}", o.vm(), o.location(), e.getMessage());
                continue;
            }
            log.warn(
                    "budget exceeded: {} at {} occupies {} bytes, policy {} allows {}; restore point {} needed {};"
                            + " kept: {} (docs/runbooks/budget-exceeded.md)",
                    o.vm(),
                    o.location(),
                    o.usedBytes(),
                    o.policy(),
                    o.budgetBytes(),
                    o.newestPointId(),
                    o.neededBytes(),
                    o.held());
        }
        return plan.overBudget();
    }
}
