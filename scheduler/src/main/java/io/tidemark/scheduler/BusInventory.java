package io.tidemark.scheduler;

import io.tidemark.core.RetriableException;
import io.tidemark.core.bus.EventBus;
import io.tidemark.core.bus.Topics;
import io.tidemark.core.event.Event;
import io.tidemark.core.event.VmGone;
import io.tidemark.core.event.VmPlaced;
import java.time.Duration;
import java.util.Comparator;
import java.util.HashMap;
import java.util.List;
import java.util.Map;
import java.util.Objects;
import java.util.Optional;
import java.util.TreeMap;
import java.util.UUID;
import java.util.concurrent.TimeUnit;
import java.util.concurrent.locks.Condition;
import java.util.concurrent.locks.ReentrantLock;
import java.util.function.BooleanSupplier;
import org.slf4j.Logger;
import org.slf4j.LoggerFactory;

/**
 * The {@link Inventory} that follows the compacted {@link Topics#INVENTORY} topic, where the worker
 * of each host publishes {@link VmPlaced} and {@link VmGone} keyed by VM name.
 *
 * <p>It reads the topic from the beginning in a consumer group of its own and keeps, per VM, the
 * latest claim of each host that placed it. Rules:
 *
 * <ul>
 *   <li>A {@link VmPlaced} replaces the claim of its host (a host's own events arrive in order: one
 *       producer, one key).
 *   <li>A {@link VmGone} withdraws only the claim of its host. A "gone from A" that arrives after
 *       "placed on B" during a migration leaves the VM on B.
 *   <li>When several hosts claim a VM (a live migration in progress, or a host that stopped without
 *       withdrawing), the VM is where it was seen last ({@code seenAt}; on a tie, the claim read
 *       last). A claim that another host's placement outdates by more than {@code
 *       staleClaimAfter} is dropped, so a host that stopped without withdrawing does not get the
 *       VM back when it leaves its new host.
 * </ul>
 *
 * <p>With one record per VM kept by compaction, a reader that starts after a "gone from A" has
 * replaced "placed on B" learns of B at B's next heartbeat (see ADR 0003).
 *
 * <p>Thread-safe. {@link #awaitReady} lets a starting scheduler wait until it has read what the
 * topic holds.
 */
public final class BusInventory implements Inventory, AutoCloseable {

    private static final Logger log = LoggerFactory.getLogger(BusInventory.class);

    private final ReentrantLock lock = new ReentrantLock();
    private final Condition changed = lock.newCondition();
    /** vm → host → that host's latest claim; guarded by {@code lock}. */
    private final Map<String, Map<String, Claim>> claims = new HashMap<>();
    /** The chosen placement per VM, rebuilt on change; guarded by {@code lock}. */
    private final TreeMap<String, VmPlacement> placements = new TreeMap<>();

    private final Duration staleClaimAfter;
    private final String group;
    private final CatchUp catchUp;
    private final EventBus.Subscription subscription;
    private long sequence;

    private BusInventory(EventBus bus, CatchUp catchUp, Duration staleClaimAfter) {
        this.staleClaimAfter = staleClaimAfter;
        this.group = "tidemark-inventory-" + UUID.randomUUID();
        this.catchUp = catchUp;
        this.subscription = bus.subscribe(group, List.of(Topics.INVENTORY), this::handle);
    }

    /**
     * Starts following the inventory topic of {@code bus} in a new consumer group (unique per
     * instance, reading from the beginning).
     *
     * @param catchUp how to tell when the group has read the topic up to its end offsets (on Kafka,
     *     {@code KafkaEventBus::caughtUpCheck})
     * @param staleClaimAfter a host's claim on a VM is dropped when another host places the VM
     *     later than this after it (the host stopped without withdrawing; a live host re-publishes
     *     its claims every heartbeat, so this should span a few heartbeats)
     */
    public static BusInventory start(EventBus bus, CatchUp catchUp, Duration staleClaimAfter) {
        Objects.requireNonNull(bus, "bus");
        Objects.requireNonNull(catchUp, "catchUp");
        if (staleClaimAfter.isNegative()) {
            throw new IllegalArgumentException("staleClaimAfter must not be negative: " + staleClaimAfter);
        }
        return new BusInventory(bus, catchUp, staleClaimAfter);
    }

    /**
     * Waits until this inventory has handled every record the topic holds at this call (a starting
     * scheduler calls it once before its first firing), or {@code timeout} passed.
     *
     * @throws RetriableException naming the topic when it has not caught up in time
     */
    public void awaitReady(Duration timeout) {
        long deadline = System.nanoTime() + timeout.toNanos();
        BooleanSupplier caughtUp = catchUp.check(group, Topics.INVENTORY);
        // the check asks the broker: never while holding the lock the bus thread needs
        while (!caughtUp.getAsBoolean()) {
            long left = deadline - System.nanoTime();
            if (left <= 0) {
                throw new RetriableException("the inventory has not caught up with " + Topics.INVENTORY
                        + " within " + timeout.toSeconds() + " s (" + all().size()
                        + " VMs read so far); check the Kafka broker");
            }
            lock.lock();
            try {
                // woken early by each handled record, then the committed offsets are asked again
                changed.await(Math.min(left, TimeUnit.MILLISECONDS.toNanos(200)), TimeUnit.NANOSECONDS);
            } catch (InterruptedException e) {
                Thread.currentThread().interrupt();
                throw new RetriableException("interrupted while waiting for the inventory", e);
            } finally {
                lock.unlock();
            }
        }
        log.info("inventory caught up with {}: {} VMs", Topics.INVENTORY, all().size());
    }

    /**
     * Applies one event of the inventory topic (other payloads are ignored). Called on the bus's
     * thread; public so that other transports can feed it.
     */
    public void handle(String topic, Event event) {
        lock.lock();
        try {
            if (event.payload() instanceof VmPlaced placed) {
                Map<String, Claim> byHost = claims.computeIfAbsent(placed.vm(), vm -> new HashMap<>());
                byHost.values()
                        .removeIf(c -> c.placed().seenAt().plus(staleClaimAfter).isBefore(placed.seenAt()));
                byHost.put(placed.host(), new Claim(placed, ++sequence));
                choose(placed.vm());
            } else if (event.payload() instanceof VmGone gone) {
                Map<String, Claim> byHost = claims.get(gone.vm());
                if (byHost != null && byHost.remove(gone.host()) != null) {
                    if (byHost.isEmpty()) {
                        claims.remove(gone.vm());
                    }
                    choose(gone.vm());
                }
            }
            changed.signalAll();
        } finally {
            lock.unlock();
        }
    }

    @Override
    public Optional<Placement> locate(String vm) {
        lock.lock();
        try {
            return Optional.ofNullable(placements.get(vm)).map(VmPlacement::placement);
        } finally {
            lock.unlock();
        }
    }

    @Override
    public List<VmPlacement> all() {
        lock.lock();
        try {
            return List.copyOf(placements.values());
        } finally {
            lock.unlock();
        }
    }

    /** Stops following the topic; the last view stays readable. */
    @Override
    public void close() {
        subscription.close();
    }

    /** Re-derives the placement of {@code vm} from its claims; caller holds the lock. */
    private void choose(String vm) {
        Map<String, Claim> byHost = claims.getOrDefault(vm, Map.of());
        Optional<Claim> winner = byHost.values().stream()
                .max(Comparator.comparing((Claim c) -> c.placed().seenAt()).thenComparingLong(Claim::sequence));
        VmPlacement before = placements.get(vm);
        if (winner.isEmpty()) {
            placements.remove(vm);
        } else {
            VmPlaced p = winner.get().placed();
            placements.put(vm, VmPlacement.of(vm, p.host(), p.labels()));
        }
        VmPlacement after = placements.get(vm);
        if (!Objects.equals(before == null ? null : before.host(), after == null ? null : after.host())) {
            log.info("VM {} {}", vm, after == null ? "left " + before.host() : "placed on " + after.host());
        }
    }

    /** One host's latest claim on a VM, with the order in which it was read. */
    private record Claim(VmPlaced placed, long sequence) {}

    /**
     * How a consumer group's progress on a topic is observed: a port so the scheduler stays free of
     * Kafka types. On Kafka, {@code KafkaEventBus::caughtUpCheck}; on a synchronous bus, {@link
     * #ALWAYS}.
     */
    @FunctionalInterface
    public interface CatchUp {

        /** A bus that delivers synchronously is always caught up. */
        CatchUp ALWAYS = (group, topic) -> () -> true;

        /**
         * Takes the end of {@code topic} now and returns a check that is true once {@code group} has
         * handled every record up to it.
         */
        BooleanSupplier check(String group, String topic);
    }
}
