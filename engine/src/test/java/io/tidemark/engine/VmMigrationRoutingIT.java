package io.tidemark.engine;

import static org.assertj.core.api.Assertions.assertThat;
import static org.awaitility.Awaitility.await;

import io.tidemark.core.PermanentException;
import io.tidemark.core.bus.EventBus;
import io.tidemark.core.bus.Topics;
import io.tidemark.core.event.Event;
import io.tidemark.core.event.SnapshotJob;
import io.tidemark.core.event.VmGone;
import io.tidemark.core.event.VmPlaced;
import io.tidemark.core.hypervisor.Capture;
import io.tidemark.core.hypervisor.CaptureRequest;
import io.tidemark.core.hypervisor.DiskInfo;
import io.tidemark.core.hypervisor.Hypervisor;
import io.tidemark.core.hypervisor.VmInfo;
import io.tidemark.kafka.EmbeddedKafka;
import io.tidemark.kafka.KafkaEventBus;
import io.tidemark.policies.Policy;
import io.tidemark.policies.PolicySet;
import io.tidemark.policies.Schedule;
import io.tidemark.policies.VmSelector;
import io.tidemark.scheduler.BusInventory;
import io.tidemark.scheduler.Firing;
import io.tidemark.scheduler.Placement;
import io.tidemark.scheduler.PolicyScheduler;
import io.tidemark.workers.InventoryPublisher;
import java.nio.file.Path;
import java.time.Clock;
import java.time.Duration;
import java.time.Instant;
import java.time.temporal.ChronoUnit;
import java.util.List;
import java.util.Map;
import java.util.Set;
import java.util.concurrent.ConcurrentHashMap;
import java.util.concurrent.CopyOnWriteArrayList;
import java.util.concurrent.ExecutionException;
import java.util.concurrent.TimeUnit;
import java.util.concurrent.TimeoutException;
import java.util.function.BooleanSupplier;
import org.apache.kafka.clients.admin.Admin;
import org.apache.kafka.clients.admin.AdminClientConfig;
import org.apache.kafka.common.config.ConfigResource;
import org.apache.kafka.common.config.TopicConfig;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.Timeout;
import org.junit.jupiter.api.io.TempDir;

/**
 * Routing follows a live migration through the compacted inventory topic on a real broker: two
 * hosts publish their VMs, one scheduler reads them with {@link BusInventory}; while the VM runs on
 * hv-a its jobs go to {@code tidemark.jobs.hv-a}; once hv-b reports it and hv-a reports it gone (in
 * that order, the awkward one), the next job goes to {@code tidemark.jobs.hv-b} and none to hv-a.
 */
class VmMigrationRoutingIT {

    private static final String VM = "mig-vm";
    private static final Duration DEADLINE = Duration.ofSeconds(20);

    @TempDir
    Path dir;

    @Test
    @Timeout(60)
    void theNextJobAfterAMigrationGoesToTheNewHostOnly() {
        Clock clock = Clock.systemUTC();
        HostVms hvA = new HostVms();
        HostVms hvB = new HostVms();
        hvA.put(VM);
        Set<String> inventorySeen = ConcurrentHashMap.newKeySet();
        List<SnapshotJob> jobsA = new CopyOnWriteArrayList<>();
        List<SnapshotJob> jobsB = new CopyOnWriteArrayList<>();
        try (EmbeddedKafka kafka = EmbeddedKafka.start(dir.resolve("kafka"), 0, 0);
                KafkaEventBus bus = new KafkaEventBus(kafka.bootstrapServers())) {
            bus.ensureCompactedTopic(Topics.INVENTORY);
            assertThat(cleanupPolicy(kafka.bootstrapServers(), Topics.INVENTORY))
                    .isEqualTo("compact");
            bus.ensureTopics(List.of(Topics.jobs("hv-a"), Topics.jobs("hv-b")));
            try (InventoryPublisher publisherA = publisher("hv-a", hvA, bus, clock);
                    InventoryPublisher publisherB = publisher("hv-b", hvB, bus, clock);
                    EventBus.Subscription inventoryWatch = bus.subscribe(
                            "it-inventory-watch", List.of(Topics.INVENTORY), (t, e) -> inventorySeen.add(describe(e)));
                    EventBus.Subscription workerA =
                            bus.subscribe("it-worker-hv-a", List.of(Topics.jobs("hv-a")), collect(jobsA));
                    EventBus.Subscription workerB =
                            bus.subscribe("it-worker-hv-b", List.of(Topics.jobs("hv-b")), collect(jobsB))) {
                publisherA.start();
                publisherB.start();
                try (BusInventory inventory = BusInventory.start(bus, bus::caughtUpCheck, Duration.ofMinutes(15))) {
                    inventory.awaitReady(DEADLINE);
                    assertThat(inventory.locate(VM)).map(Placement::host).contains("hv-a");

                    Policy policy = Policy.of(
                            "migrate",
                            VmSelector.ofNames(VM),
                            Schedule.Interval.every(Duration.ofSeconds(10)),
                            Duration.ofHours(1),
                            List.of());
                    try (PolicyScheduler scheduler =
                            PolicyScheduler.start(PolicySet.of(policy), inventory, bus, clock)) {
                        Firing before = scheduler.fireNow("migrate");
                        assertThat(before.failedVms()).isEmpty();
                        await().atMost(DEADLINE).until(() -> hasJob(jobsA, before));

                        // the destination reports the VM before the source reports it gone
                        hvB.put(VM);
                        await().atMost(DEADLINE).until(() -> inventorySeen.contains("placed " + VM + " hv-b"));
                        hvA.remove(VM);
                        await().atMost(DEADLINE).until(() -> inventorySeen.contains("gone " + VM + " hv-a"));
                        inventory.awaitReady(DEADLINE); // has read the gone, too
                        assertThat(inventory.locate(VM)).map(Placement::host).contains("hv-b");
                        assertThat(inventory.all()).hasSize(1);
                        Instant moved = clock.instant().truncatedTo(ChronoUnit.MILLIS);

                        Firing after = scheduler.fireNow("migrate");
                        assertThat(after.jobIds()).hasSize(1);
                        await().atMost(DEADLINE).until(() -> hasJob(jobsB, after));

                        // the hv-a worker has read its whole topic: no job since the move reached it
                        BooleanSupplier drainedA = bus.caughtUpCheck("it-worker-hv-a", Topics.jobs("hv-a"));
                        await().atMost(DEADLINE).until(drainedA::getAsBoolean);
                        assertThat(jobsA).isNotEmpty().allSatisfy(j -> assertThat(j.scheduledFor())
                                .isBefore(moved));
                        assertThat(jobsB).allSatisfy(j -> assertThat(j.host()).isEqualTo("hv-b"));
                    }
                }
            }
        }
    }

    private static InventoryPublisher publisher(String host, Hypervisor hv, EventBus bus, Clock clock) {
        return new InventoryPublisher(
                host, hv, bus, clock, vm -> Map.of(), Duration.ofMillis(200), Duration.ofMinutes(5));
    }

    private static String cleanupPolicy(String bootstrap, String topic) {
        try (Admin admin = Admin.create(Map.of(AdminClientConfig.BOOTSTRAP_SERVERS_CONFIG, bootstrap))) {
            ConfigResource resource = new ConfigResource(ConfigResource.Type.TOPIC, topic);
            return admin.describeConfigs(List.of(resource))
                    .all()
                    .get(30, TimeUnit.SECONDS)
                    .get(resource)
                    .get(TopicConfig.CLEANUP_POLICY_CONFIG)
                    .value();
        } catch (InterruptedException e) {
            Thread.currentThread().interrupt();
            throw new IllegalStateException(e);
        } catch (ExecutionException | TimeoutException e) {
            throw new IllegalStateException("cannot describe " + topic, e);
        }
    }

    private static EventBus.EventHandler collect(List<SnapshotJob> into) {
        return (topic, event) -> {
            if (event.payload() instanceof SnapshotJob job) {
                into.add(job);
            }
        };
    }

    private static boolean hasJob(List<SnapshotJob> jobs, Firing firing) {
        return jobs.stream().anyMatch(j -> j.scheduledFor().equals(firing.scheduledFor()));
    }

    private static String describe(Event e) {
        if (e.payload() instanceof VmPlaced p) {
            return "placed " + p.vm() + " " + p.host();
        }
        if (e.payload() instanceof VmGone g) {
            return "gone " + g.vm() + " " + g.host();
        }
        return e.payload().getClass().getSimpleName();
    }

    /** The VMs of one fake host: the test starts and stops them; each has one 16 MiB disk. */
    private static final class HostVms implements Hypervisor {
        private final Set<String> vms = ConcurrentHashMap.newKeySet();

        void put(String vm) {
            vms.add(vm);
        }

        void remove(String vm) {
            vms.remove(vm);
        }

        @Override
        public List<VmInfo> list() {
            return vms.stream()
                    .sorted()
                    .map(vm -> new VmInfo(vm, List.of(new DiskInfo("vda", "drive-vda", 16L << 20))))
                    .toList();
        }

        @Override
        public Capture capture(CaptureRequest request) {
            throw new PermanentException("this fake host lists VMs only");
        }

        @Override
        public void close() {}
    }
}
