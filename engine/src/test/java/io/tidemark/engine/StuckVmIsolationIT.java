package io.tidemark.engine;

import static org.assertj.core.api.Assertions.assertThat;
import static org.awaitility.Awaitility.await;

import io.tidemark.core.bus.EventBus;
import io.tidemark.core.bus.Topics;
import io.tidemark.core.event.Event;
import io.tidemark.core.event.FailureReason;
import io.tidemark.core.event.JobFailed;
import io.tidemark.core.event.RestorePointCreated;
import io.tidemark.core.event.SnapshotJob;
import io.tidemark.format.RepositoryConfig;
import io.tidemark.kafka.EmbeddedKafka;
import io.tidemark.kafka.KafkaEventBus;
import io.tidemark.policies.Policy;
import io.tidemark.policies.PolicySet;
import io.tidemark.policies.Schedule;
import io.tidemark.policies.VmSelector;
import io.tidemark.repository.Repository;
import io.tidemark.scheduler.InMemoryInventory;
import io.tidemark.scheduler.PolicyScheduler;
import io.tidemark.targets.file.FileObjectTarget;
import io.tidemark.testkit.qemu.QemuVm;
import io.tidemark.workers.BackupWorker;
import io.tidemark.workers.CaptureHooks;
import io.tidemark.workers.JobBounds;
import io.tidemark.workers.NbdBlockSource;
import io.tidemark.workers.qmp.QmpHypervisor;
import java.io.IOException;
import java.nio.file.Files;
import java.nio.file.Path;
import java.time.Clock;
import java.time.Duration;
import java.time.Instant;
import java.util.List;
import java.util.Map;
import java.util.concurrent.ConcurrentHashMap;
import java.util.concurrent.CopyOnWriteArrayList;
import java.util.stream.Collectors;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;

/**
 * Day two, on real parts: two QEMU VMs (TCG) on one host, a policy firing every 3 s through Quartz
 * and the embedded KRaft broker, the worker on a lane-per-VM subscription, a file repository. Then
 * {@code kill -STOP} one QEMU: the other VM's restore points keep coming at the schedule, every job
 * of the stopped VM ends in one JobFailed with a reason (the first at its deadline), and after
 * {@code kill -CONT} the stopped VM takes points again without a burst of stale jobs.
 */
class StuckVmIsolationIT {

    private static final String HOST = "hv-stuck";
    private static final long MIB = 1 << 20;
    private static final Duration INTERVAL = Duration.ofSeconds(3);
    private static final Duration DEADLINE = Duration.ofSeconds(10);

    @TempDir
    Path dir;

    private record Seen(String jobId, Object payload, Instant at) {}

    private final List<Seen> points = new CopyOnWriteArrayList<>();
    private final List<Seen> failures = new CopyOnWriteArrayList<>();
    private final Map<String, SnapshotJob> jobs = new ConcurrentHashMap<>();

    private long pointsOf(String vm, Instant after) {
        return points.stream()
                .filter(s -> ((RestorePointCreated) s.payload()).vm().equals(vm))
                .filter(s -> s.at().isAfter(after))
                .count();
    }

    private List<JobFailed> failuresOf(String vm) {
        return failures.stream()
                .map(s -> (JobFailed) s.payload())
                .filter(f -> f.vm().equals(vm))
                .toList();
    }

    @Test
    void aStoppedQemuCostsOnlyItsOwnJobsAndEveryJobOfItEndsInOneJobFailed() throws Exception {
        Path qmp = Files.createDirectories(dir.resolve("qmp"));
        Repository repo = Repository.openOrInit(
                new FileObjectTarget(Files.createDirectories(dir.resolve("repo"))), RepositoryConfig.defaults());
        JobBounds bounds = new JobBounds(
                DEADLINE,
                Duration.ofSeconds(3),
                3,
                Duration.ofSeconds(1),
                Duration.ofSeconds(10),
                Duration.ofSeconds(5),
                Duration.ofSeconds(5));
        try (EmbeddedKafka kafka = EmbeddedKafka.start(dir.resolve("kafka"), 0, 0);
                KafkaEventBus bus = new KafkaEventBus(kafka.bootstrapServers());
                QemuVm ok = QemuVm.start(qmp, "ok", 16 * MIB);
                QemuVm stuck = QemuVm.start(qmp, "stuck", 16 * MIB);
                QmpHypervisor hv = new QmpHypervisor(qmp, dir.resolve("state"));
                BackupWorker worker = new BackupWorker(
                        HOST,
                        hv,
                        repo,
                        bus,
                        Clock.systemUTC(),
                        dir.resolve("work"),
                        CaptureHooks.NONE,
                        NbdBlockSource::open,
                        BackupWorker.Limits.DEFAULTS.withMaxConcurrentJobs(2).withBounds(bounds))) {
            ok.write("sd0", 0, (int) MIB, 0x11);
            stuck.write("sd0", 0, (int) MIB, 0x22);
            bus.ensurePartitions(Topics.jobs(HOST), 2);
            try (EventBus.Subscription observed = observe(bus);
                    EventBus.Subscription lanes = bus.subscribeByKey(
                            "tidemark-worker-" + HOST, List.of(Topics.jobs(HOST)), 2, worker::handle);
                    PolicyScheduler scheduler = PolicyScheduler.start(
                            PolicySet.of(Policy.of(
                                    "every3s",
                                    VmSelector.ofNames("ok", "stuck"),
                                    Schedule.Interval.every(INTERVAL),
                                    Duration.ofHours(1),
                                    List.of())),
                            new InMemoryInventory().put("ok", HOST, Map.of()).put("stuck", HOST, Map.of()),
                            bus,
                            Clock.systemUTC())) {
                // both VMs take points
                await().atMost(Duration.ofSeconds(120))
                        .until(() -> pointsOf("ok", Instant.EPOCH) >= 1 && pointsOf("stuck", Instant.EPOCH) >= 1);

                signal("STOP", stuck);
                Instant stopped = Instant.now();
                try {
                    // the other VM's points keep coming at the schedule: 6 in at most 30 s (10 firings)
                    await().atMost(Duration.ofSeconds(30)).until(() -> pointsOf("ok", stopped) >= 6);
                    // the stopped VM's first job ends at its deadline; later ones end without waiting it out
                    await().atMost(DEADLINE.plusSeconds(30)).until(() -> failuresOf("stuck").stream()
                            .anyMatch(f -> f.reason().equals(java.util.Optional.of(FailureReason.DEADLINE_EXCEEDED))));
                    // every job of the stopped VM scheduled in the first 15 s ends in a JobFailed (no retry loop)
                    List<String> stuckJobs = jobs.entrySet().stream()
                            .filter(e -> e.getValue().vm().equals("stuck"))
                            .filter(e -> !e.getValue().scheduledFor().isBefore(stopped.plusSeconds(1)))
                            .filter(e -> e.getValue().scheduledFor().isBefore(stopped.plusSeconds(15)))
                            .map(Map.Entry::getKey)
                            .toList();
                    assertThat(stuckJobs).hasSizeGreaterThanOrEqualTo(3);
                    await().atMost(Duration.ofSeconds(60)).until(() -> failures.stream()
                            .map(Seen::jobId)
                            .collect(Collectors.toSet())
                            .containsAll(stuckJobs));
                    assertThat(failuresOf("stuck"))
                            .allSatisfy(f -> assertThat(f.reason()).hasValueSatisfying(r -> assertThat(r)
                                    .isIn(
                                            FailureReason.DEADLINE_EXCEEDED,
                                            FailureReason.VM_BUSY,
                                            FailureReason.EXPIRED)));
                    assertThat(failures.stream().map(Seen::jobId).toList())
                            .as("one JobFailed per job")
                            .doesNotHaveDuplicates();
                    // (a first firing may expire while the consumer group forms: only jobs since the stop count)
                    assertThat(failures.stream()
                                    .filter(f -> ((JobFailed) f.payload()).vm().equals("ok"))
                                    .filter(f -> jobs.containsKey(f.jobId())
                                            && !jobs.get(f.jobId())
                                                    .scheduledFor()
                                                    .isBefore(stopped))
                                    .toList())
                            .as("the other VM lost no job since the stop")
                            .isEmpty();
                } finally {
                    signal("CONT", stuck);
                }
                Instant resumed = Instant.now();
                await().atMost(Duration.ofSeconds(90)).until(() -> pointsOf("stuck", resumed) >= 1);
                // no burst of stale jobs: every point taken after the resume is for a recent firing
                List<Instant> stale = points.stream()
                        .filter(s -> s.at().isAfter(resumed))
                        .map(s -> jobs.get(s.jobId()))
                        .filter(j -> j != null && j.scheduledFor().isBefore(resumed.minus(INTERVAL.multipliedBy(2))))
                        .map(SnapshotJob::scheduledFor)
                        .toList();
                assertThat(stale)
                        .as("points for firings long before the resume")
                        .isEmpty();
            }
        } finally {
            System.out.println("StuckVmIsolationIT: " + points.size() + " points, failures: "
                    + failures.stream()
                            .map(s -> ((JobFailed) s.payload()).vm() + ":"
                                    + ((JobFailed) s.payload())
                                            .reason()
                                            .map(Enum::name)
                                            .orElse("-"))
                            .toList());
        }
    }

    private EventBus.Subscription observe(KafkaEventBus bus) {
        EventBus.Subscription a = bus.subscribe(
                "it-observer",
                List.of(Topics.RESTORE_POINTS, Topics.JOB_STATUS, Topics.jobs(HOST)),
                (t, e) -> record(e));
        return a;
    }

    private void record(Event e) {
        if (e.payload() instanceof RestorePointCreated) {
            points.add(new Seen(e.jobId(), e.payload(), Instant.now()));
        } else if (e.payload() instanceof JobFailed) {
            failures.add(new Seen(e.jobId(), e.payload(), Instant.now()));
        } else if (e.payload() instanceof SnapshotJob j) {
            jobs.put(e.jobId(), j);
        }
    }

    private static void signal(String signal, QemuVm vm) throws IOException, InterruptedException {
        Process kill = new ProcessBuilder("kill", "-" + signal, Long.toString(vm.pid()))
                .inheritIO()
                .start();
        assertThat(kill.waitFor()).as("kill -" + signal + " " + vm.pid()).isZero();
    }
}
