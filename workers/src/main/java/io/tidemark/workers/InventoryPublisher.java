package io.tidemark.workers;

import io.tidemark.core.bus.EventBus;
import io.tidemark.core.bus.Topics;
import io.tidemark.core.concurrent.DaemonThreads;
import io.tidemark.core.event.Event;
import io.tidemark.core.event.EventPayload;
import io.tidemark.core.event.VmGone;
import io.tidemark.core.event.VmPlaced;
import io.tidemark.core.hypervisor.Hypervisor;
import io.tidemark.core.hypervisor.VmInfo;
import java.time.Clock;
import java.time.Duration;
import java.time.Instant;
import java.util.HashMap;
import java.util.HashSet;
import java.util.List;
import java.util.Map;
import java.util.Objects;
import java.util.Set;
import java.util.concurrent.Executors;
import java.util.concurrent.ScheduledExecutorService;
import java.util.concurrent.TimeUnit;
import java.util.function.Function;
import org.slf4j.Logger;
import org.slf4j.LoggerFactory;

/**
 * Publishes the VMs of one host to the compacted {@link Topics#INVENTORY} topic, keyed by VM name,
 * so the scheduler routes jobs to where each VM runs now.
 *
 * <p>Contracts:
 *
 * <ul>
 *   <li>Each round lists the {@link Hypervisor} and publishes a {@link VmPlaced} for every VM that
 *       is new or whose disks or labels changed since this publisher last published it, and a {@link
 *       VmGone} for every VM it published before that is no longer listed.
 *   <li>Once every {@code heartbeat} (by the injected clock) a round re-publishes every listed VM,
 *       so the topic keeps up with compaction, restarts and lost records.
 *   <li>A publish that fails is retried in the next round (the VM is not recorded as published); a
 *       failed listing skips the round. Failures are logged, never thrown from the schedule.
 *   <li>{@link #start()} publishes once on the calling thread, then every {@code interval} on a
 *       thread of its own. Rounds never overlap.
 * </ul>
 *
 * <p>A publisher that restarts knows nothing of what an earlier one published: a VM that disappeared
 * while it was down gets no {@link VmGone}; a newer placement elsewhere shadows the stale one.
 */
public final class InventoryPublisher implements AutoCloseable {

    private static final Logger log = LoggerFactory.getLogger(InventoryPublisher.class);

    private final String host;
    private final Hypervisor hypervisor;
    private final EventBus bus;
    private final Clock clock;
    private final Function<VmInfo, Map<String, String>> labels;
    private final Duration interval;
    private final Duration heartbeat;
    private final ScheduledExecutorService executor;
    /** What this publisher last published per VM; guarded by {@code this}. */
    private final Map<String, VmPlaced> published = new HashMap<>();

    private Instant lastFull = Instant.MIN;

    /**
     * @param host this host's name, as the scheduler routes by
     * @param hypervisor the VMs of this host
     * @param bus where to publish
     * @param clock stamps {@code seenAt} and decides heartbeats
     * @param labels the labels of a VM (policy selectors match them)
     * @param interval how often to look for changes
     * @param heartbeat how often to re-publish every VM
     */
    public InventoryPublisher(
            String host,
            Hypervisor hypervisor,
            EventBus bus,
            Clock clock,
            Function<VmInfo, Map<String, String>> labels,
            Duration interval,
            Duration heartbeat) {
        this.host = Objects.requireNonNull(host, "host");
        this.hypervisor = Objects.requireNonNull(hypervisor, "hypervisor");
        this.bus = Objects.requireNonNull(bus, "bus");
        this.clock = Objects.requireNonNull(clock, "clock");
        this.labels = Objects.requireNonNull(labels, "labels");
        if (interval.isNegative() || interval.isZero() || heartbeat.compareTo(interval) < 0) {
            throw new IllegalArgumentException(
                    "interval must be positive and heartbeat at least interval: " + interval + ", " + heartbeat);
        }
        this.interval = interval;
        this.heartbeat = heartbeat;
        this.executor = Executors.newSingleThreadScheduledExecutor(DaemonThreads.named("inventory-publisher-" + host));
    }

    /**
     * Publishes once now, on the calling thread, then every {@code interval}.
     *
     * @throws io.tidemark.core.RetriableException if the first round cannot list or publish
     */
    public void start() {
        Round first = publishOnce();
        log.info("host {}: {} VMs on {}", host, first.placed(), Topics.INVENTORY);
        executor.scheduleWithFixedDelay(
                this::scheduledRound, interval.toMillis(), interval.toMillis(), TimeUnit.MILLISECONDS);
    }

    /**
     * Runs one round: lists the hypervisor and publishes what changed (everything on a heartbeat).
     *
     * @return how many events of each kind were published
     * @throws io.tidemark.core.RetriableException if the listing or a publish fails; what was
     *     published before the failure is recorded
     */
    public synchronized Round publishOnce() {
        Instant now = clock.instant();
        List<VmInfo> vms = hypervisor.list();
        boolean full = !now.isBefore(lastFull.plus(heartbeat));
        int placed = 0;
        int gone = 0;
        Set<String> listed = new HashSet<>();
        for (VmInfo vm : vms) {
            listed.add(vm.name());
            VmPlaced next = new VmPlaced(
                    vm.name(),
                    host,
                    labels.apply(vm),
                    vm.disks().stream()
                            .map(d -> new VmPlaced.Disk(d.name(), d.sizeBytes()))
                            .toList(),
                    now);
            VmPlaced before = published.get(vm.name());
            if (full || before == null || !before.sameAs(next)) {
                publish(next, now);
                published.put(vm.name(), next);
                placed++;
            }
        }
        for (String vm : List.copyOf(published.keySet())) {
            if (!listed.contains(vm)) {
                publish(new VmGone(vm, host), now);
                published.remove(vm);
                gone++;
            }
        }
        if (full) {
            lastFull = now;
        }
        return new Round(placed, gone, full);
    }

    /** Stops publishing; waits briefly for a round in progress. Publishes nothing on the way out. */
    @Override
    public void close() {
        executor.shutdownNow();
        try {
            executor.awaitTermination(5, TimeUnit.SECONDS);
        } catch (InterruptedException e) {
            Thread.currentThread().interrupt();
        }
    }

    private void scheduledRound() {
        try {
            Round r = publishOnce();
            if (r.placed() + r.gone() > 0) {
                log.debug("host {}: published {} placed, {} gone (full: {})", host, r.placed(), r.gone(), r.full());
            }
        } catch (RuntimeException e) { // the schedule must outlive a failed round; the next one retries
            log.warn("host {}: inventory round failed, will retry in {}: {}", host, interval, e.getMessage());
        }
    }

    private void publish(EventPayload payload, Instant now) {
        bus.publish(Topics.INVENTORY, payload.vm(), Event.of("inventory/" + host + "/" + payload.vm(), now, payload));
    }

    /**
     * What one round published.
     *
     * @param placed {@link VmPlaced} events
     * @param gone {@link VmGone} events
     * @param full whether it was a heartbeat round that re-published every VM
     */
    public record Round(int placed, int gone, boolean full) {}
}
