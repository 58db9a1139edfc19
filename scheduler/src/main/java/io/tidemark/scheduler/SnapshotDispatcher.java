package io.tidemark.scheduler;

import io.tidemark.core.TidemarkException;
import io.tidemark.core.bus.EventBus;
import io.tidemark.core.bus.Topics;
import io.tidemark.core.event.Event;
import io.tidemark.core.event.SnapshotJob;
import io.tidemark.core.event.Trigger;
import io.tidemark.policies.Policy;
import io.tidemark.policies.VmSelector;
import java.time.Clock;
import java.time.Instant;
import java.util.ArrayList;
import java.util.List;
import java.util.Optional;
import org.slf4j.Logger;
import org.slf4j.LoggerFactory;

/**
 * Turns one firing of a policy into snapshot jobs: resolves the selector against the inventory and
 * publishes one job per VM to its host's job topic. A failed publish is logged and does not stop the
 * other VMs; an inventory failure propagates.
 */
final class SnapshotDispatcher {
    private static final Logger log = LoggerFactory.getLogger(SnapshotDispatcher.class);

    private final Inventory inventory;
    private final EventBus bus;
    private final Clock clock;

    SnapshotDispatcher(Inventory inventory, EventBus bus, Clock clock) {
        this.inventory = inventory;
        this.bus = bus;
        this.clock = clock;
    }

    /** The idempotency key of the job for {@code vm} from the firing of {@code policy} at {@code scheduledFor}. */
    static String jobId(String policy, String vm, Instant scheduledFor) {
        return policy + "/" + vm + "/" + scheduledFor.toEpochMilli();
    }

    Firing dispatch(Policy policy, Instant scheduledFor) {
        List<VmPlacement> vms = resolve(policy);
        // every job of the firing in flight at once, then each outcome: waiting for each
        // acknowledgement in turn made a firing of 10,000 VMs on a Kafka cluster last minutes
        List<java.util.concurrent.CompletableFuture<Void>> sent = new ArrayList<>();
        List<String> ids = new ArrayList<>();
        for (VmPlacement vm : vms) {
            String jobId = jobId(policy.name(), vm.vm(), scheduledFor);
            SnapshotJob job = SnapshotJobs.of(
                    policy, vm.vm(), vm.host(), Trigger.schedule(policy.name()), policy.targets(), scheduledFor);
            ids.add(jobId);
            java.util.concurrent.CompletableFuture<Void> f;
            try {
                f = bus.publishAsync(Topics.jobs(vm.host()), vm.vm(), Event.of(jobId, clock.instant(), job));
            } catch (RuntimeException e) { // an adapter that broke its contract: still isolate the VM
                f = java.util.concurrent.CompletableFuture.failedFuture(e);
            }
            sent.add(f);
        }
        List<String> jobIds = new ArrayList<>();
        List<String> failed = new ArrayList<>();
        for (int i = 0; i < vms.size(); i++) {
            VmPlacement vm = vms.get(i);
            String jobId = ids.get(i);
            Throwable error = null;
            try {
                sent.get(i).join();
            } catch (java.util.concurrent.CompletionException | java.util.concurrent.CancellationException e) {
                error = e.getCause() != null ? e.getCause() : e;
            }
            if (error == null) {
                jobIds.add(jobId);
            } else if (error instanceof TidemarkException t) {
                failed.add(vm.vm());
                log.warn(
                        "policy {}: could not publish snapshot job {} for VM {} on host {} ({})",
                        policy.name(),
                        jobId,
                        vm.vm(),
                        vm.host(),
                        t.retriable() ? "retriable" : "permanent",
                        t);
            } else {
                failed.add(vm.vm());
                log.error(
                        "policy {}: could not publish snapshot job {} for VM {} on host {}",
                        policy.name(),
                        jobId,
                        vm.vm(),
                        vm.host(),
                        error);
            }
        }
        return new Firing(policy.name(), scheduledFor, jobIds, failed);
    }

    /** The VMs the policy covers now, in VM-name order; logs once at debug what it could not find. */
    private List<VmPlacement> resolve(Policy policy) {
        VmSelector selector = policy.vms();
        List<VmPlacement> matched = new ArrayList<>();
        if (selector.globs().isEmpty() && !selector.names().isEmpty()) {
            List<String> unknown = new ArrayList<>();
            for (String name : selector.names().stream().sorted().toList()) {
                Optional<Placement> where = inventory.locate(name);
                if (where.isEmpty()) {
                    unknown.add(name);
                } else if (selector.matches(name, where.get().labels())) {
                    matched.add(new VmPlacement(name, where.get()));
                }
            }
            if (!unknown.isEmpty()) {
                log.debug("policy {}: VMs not in the inventory: {}", policy.name(), unknown);
            }
        } else {
            for (VmPlacement vm : inventory.all()) {
                if (selector.matches(vm.vm(), vm.labels())) {
                    matched.add(vm);
                }
            }
        }
        if (matched.isEmpty()) {
            log.debug("policy {}: no VM in the inventory matches its selector {}", policy.name(), selector);
        }
        return matched;
    }
}
