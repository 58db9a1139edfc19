package io.tidemark.workers;

import static org.assertj.core.api.Assertions.assertThat;
import static org.awaitility.Awaitility.await;

import io.tidemark.core.event.SnapshotJob;
import io.tidemark.core.event.Trigger;
import io.tidemark.core.hypervisor.Capture;
import io.tidemark.core.hypervisor.CaptureRequest;
import io.tidemark.core.hypervisor.Hypervisor;
import io.tidemark.core.hypervisor.VmInfo;
import io.tidemark.format.RepositoryConfig;
import io.tidemark.repository.Repository;
import io.tidemark.testkit.InMemoryObjectTarget;
import io.tidemark.testkit.RecordingEventBus;
import java.nio.file.Path;
import java.time.Clock;
import java.time.Duration;
import java.time.Instant;
import java.util.ArrayList;
import java.util.List;
import java.util.Map;
import java.util.Set;
import java.util.concurrent.ConcurrentHashMap;
import java.util.concurrent.CountDownLatch;
import java.util.concurrent.Semaphore;
import java.util.concurrent.TimeUnit;
import java.util.concurrent.atomic.AtomicInteger;
import java.util.concurrent.locks.AbstractQueuedSynchronizer;
import java.util.concurrent.locks.LockSupport;
import java.util.concurrent.locks.ReentrantLock;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;

/** The per-host concurrency limit: at most N jobs at once, and jobs of one VM never overlap. */
class JobConcurrencyTest {

    private static final int MiB = 1 << 20;

    @TempDir
    Path dir;

    private final FakeHypervisor fake = new FakeHypervisor(Clock.systemUTC());
    private final CountDownLatch gate = new CountDownLatch(1);
    private final AtomicInteger running = new AtomicInteger();
    private final AtomicInteger maxRunning = new AtomicInteger();
    private final Map<String, AtomicInteger> perVm = new ConcurrentHashMap<>();
    private final AtomicInteger maxPerVm = new AtomicInteger();
    private final CountDownLatch twoIn = new CountDownLatch(2);
    private final Set<Thread> inCapture = ConcurrentHashMap.newKeySet();

    /** Holds every capture at the gate, counting how many are in at once, overall and per VM. */
    private final Hypervisor gated = new Hypervisor() {
        @Override
        public List<VmInfo> list() {
            return fake.list();
        }

        @Override
        public Capture capture(CaptureRequest request) {
            inCapture.add(Thread.currentThread());
            int now = running.incrementAndGet();
            twoIn.countDown();
            maxRunning.accumulateAndGet(now, Math::max);
            int vm = perVm.computeIfAbsent(request.vm(), v -> new AtomicInteger())
                    .incrementAndGet();
            maxPerVm.accumulateAndGet(vm, Math::max);
            try {
                if (!gate.await(60, TimeUnit.SECONDS)) {
                    throw new IllegalStateException("the test never opened the gate");
                }
                return fake.capture(request);
            } catch (InterruptedException e) {
                Thread.currentThread().interrupt();
                throw new IllegalStateException(e);
            } finally {
                inCapture.remove(Thread.currentThread());
                running.decrementAndGet();
                perVm.get(request.vm()).decrementAndGet();
            }
        }

        @Override
        public void close() {}
    };

    @Test
    void atMostTwoJobsRunAtOnceAndTwoJobsOfOneVmNeverOverlap() throws Exception {
        for (String vm : List.of("a", "b", "c")) {
            fake.addVm(vm, Map.of("sda", MiB));
        }
        Repository repo = Repository.openOrInit(new InMemoryObjectTarget("t"), RepositoryConfig.defaults());
        try (BackupWorker worker = new BackupWorker(
                "hv1",
                gated,
                repo,
                new RecordingEventBus(),
                Clock.systemUTC(),
                dir.resolve("work"),
                CaptureHooks.NONE,
                fake::open,
                2)) {
            List<Thread> threads = new ArrayList<>();
            List<Throwable> errors = new ArrayList<>();
            String[][] jobs = {{"a", "j1"}, {"a", "j2"}, {"b", "j3"}, {"c", "j4"}, {"a", "j5"}};
            CountDownLatch started = new CountDownLatch(jobs.length);
            for (String[] j : jobs) {
                Thread t = new Thread(() -> {
                    started.countDown();
                    try {
                        worker.backup(
                                j[1],
                                new SnapshotJob(j[0], "hv1", "p", Trigger.schedule("p"), List.of(), Instant.now()));
                    } catch (Throwable e) {
                        synchronized (errors) {
                            errors.add(e);
                        }
                    }
                });
                threads.add(t);
                t.start();
            }
            assertThat(started.await(30, TimeUnit.SECONDS))
                    .as("all jobs started")
                    .isTrue();
            assertThat(twoIn.await(30, TimeUnit.SECONDS))
                    .as("two captures got in")
                    .isTrue();
            // everyone else ends up parked in a lock or semaphore of the worker (the VM's lock or a
            // host slot), not merely somewhere in WAITING: only then does opening the gate test the limits
            await().atMost(Duration.ofSeconds(30)).untilAsserted(() -> assertThat(
                            threads.stream().filter(t -> !inCapture.contains(t)).map(LockSupport::getBlocker))
                    .hasSize(jobs.length - 2)
                    .allSatisfy(blocker -> assertThat(blocker)
                            .isInstanceOf(AbstractQueuedSynchronizer.class)
                            .extracting(b -> b.getClass().getEnclosingClass())
                            .isIn(ReentrantLock.class, Semaphore.class)));
            assertThat(running.get()).isEqualTo(2);
            gate.countDown();
            for (Thread t : threads) {
                t.join(TimeUnit.SECONDS.toMillis(60));
            }
            assertThat(errors).isEmpty();
            assertThat(maxRunning.get()).isEqualTo(2);
            assertThat(maxPerVm.get()).isEqualTo(1);
            assertThat(repo.manifests("a")).hasSize(3);
            assertThat(repo.manifests("b")).hasSize(1);
            assertThat(repo.manifests("c")).hasSize(1);
        }
    }
}
