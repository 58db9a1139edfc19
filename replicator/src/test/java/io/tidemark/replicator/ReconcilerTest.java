package io.tidemark.replicator;

import static org.assertj.core.api.Assertions.assertThat;

import io.tidemark.core.RetriableException;
import io.tidemark.core.event.ConsistencyPolicy;
import io.tidemark.core.event.ReplicaCommitted;
import io.tidemark.core.repository.Manifest;
import io.tidemark.core.target.ObjectTarget;
import io.tidemark.format.FormatConstants;
import io.tidemark.format.ObjectKeys;
import io.tidemark.format.RepositoryConfig;
import io.tidemark.policies.Policy;
import io.tidemark.policies.PolicySet;
import io.tidemark.policies.Retention;
import io.tidemark.policies.Schedule;
import io.tidemark.policies.VmSelector;
import io.tidemark.repository.Repository;
import io.tidemark.testkit.InMemoryObjectTarget;
import io.tidemark.testkit.RecordingEventBus;
import java.time.Clock;
import java.time.Duration;
import java.util.ArrayList;
import java.util.List;
import java.util.Map;
import java.util.Optional;
import java.util.concurrent.CountDownLatch;
import org.junit.jupiter.api.AfterEach;
import org.junit.jupiter.api.Test;

class ReconcilerTest {

    private static final String VM = "vm1";

    private final Repository primary = Repository.openOrInit(
            new InMemoryObjectTarget("primary"),
            new RepositoryConfig(FormatConstants.REPOSITORY_FORMAT_VERSION, 64 * 1024, 16));
    private final InMemoryObjectTarget offsite = new InMemoryObjectTarget("offsite");
    private final RecordingEventBus bus = new RecordingEventBus();
    private final Replicator replicator =
            new Replicator(primary, Map.<String, ObjectTarget>of("offsite", offsite), bus, Clock.systemUTC(), 2);
    private final RestorePoints points = new RestorePoints(primary, VM, 32, 3);
    private Reconciler reconciler;

    @AfterEach
    void close() {
        if (reconciler != null) {
            reconciler.close();
        }
        replicator.close();
    }

    private static Policy policy(List<String> targets, Map<String, Retention> retention) {
        return new Policy(
                "pol",
                VmSelector.ofNames(VM),
                Schedule.Interval.every(Duration.ofMinutes(5)),
                ConsistencyPolicy.CRASH,
                Duration.ofMinutes(30),
                Optional.empty(),
                Optional.empty(),
                targets,
                retention,
                Optional.empty());
    }

    private Reconciler reconciler(Policy p) {
        reconciler = new Reconciler(
                replicator,
                PolicySet.of(p),
                Clock.systemUTC(),
                new Reconciler.Settings(Duration.ofMinutes(1), Duration.ofSeconds(10), Duration.ofMillis(300)));
        return reconciler;
    }

    private List<Manifest> chain(int n) {
        List<Manifest> out = new ArrayList<>();
        out.add(points.full(4));
        for (int i = 1; i < n; i++) {
            out.add(points.incremental(out.get(i - 1), List.of(i)));
        }
        return out;
    }

    @Test
    void shipsEveryPointTheTargetLacksOnceAndAnnouncesIt() {
        List<Manifest> chain = chain(3);
        Reconciler r = reconciler(policy(List.of("offsite"), Map.of()));

        Reconciler.Round first = r.reconcile("offsite");
        Reconciler.Round second = r.reconcile("offsite");

        assertThat(first.shipped()).isEqualTo(3);
        assertThat(second.shipped()).isZero();
        assertThat(second.missing()).isZero();
        Repository there = Repository.open(offsite);
        assertThat(there.manifests(VM))
                .extracting(Manifest::id)
                .containsExactlyElementsOf(chain.stream().map(Manifest::id).toList());
        assertThat(bus.payloads(ReplicaCommitted.class))
                .extracting(ReplicaCommitted::restorePointId)
                .containsExactlyElementsOf(chain.stream().map(Manifest::id).toList());
        assertThat(r.states().get("offsite").missing()).isZero();
    }

    @Test
    void aPointTheTargetsRetentionWouldNotKeepIsNotShipped() {
        List<Manifest> chain = chain(3);
        Reconciler r = reconciler(policy(List.of("offsite"), Map.of("offsite", new Retention(1, 0, 0, 0, 0, 0))));

        assertThat(r.reconcile("offsite").shipped()).isEqualTo(1);

        assertThat(Repository.open(offsite).manifests(VM))
                .extracting(Manifest::id)
                .containsExactly(chain.get(2).id());
    }

    @Test
    void aVmWhosePolicyDoesNotNameTheTargetIsLeftAlone() {
        chain(2);
        Reconciler r = reconciler(policy(List.of(), Map.of()));

        assertThat(r.reconcile("offsite")).isEqualTo(new Reconciler.Round("offsite", 0, 0, false));
        assertThat(offsite.keys()).isEmpty();
    }

    @Test
    void whileTheTargetIsDownTheMissingPointsAndTheirBytesAreCountedAndShippedOnceItAnswers() {
        List<Manifest> chain = chain(2);
        Reconciler r = reconciler(policy(List.of("offsite"), Map.of()));
        offsite.failNext(1, () -> new RetriableException("connection refused"));

        assertThat(r.probe("offsite")).isFalse();
        Reconciler.Round down = r.reconcile("offsite");

        assertThat(down.shipped()).isZero();
        assertThat(down.missing()).isEqualTo(2);
        assertThat(r.states().get("offsite").oldestMissingCapturedAt())
                .contains(chain.get(0).capturedAt());
        assertThat(r.states().get("offsite").missingBytes())
                .as("the new bytes of the points it lacks")
                .isPositive()
                .isEqualTo(chain.stream().mapToLong(Manifest::bytesNew).sum());
        assertThat(r.states().get("offsite").probeError())
                .hasValueSatisfying(e -> assertThat(e).contains("connection refused"));
        assertThat(offsite.keys()).isEmpty();

        assertThat(r.probe("offsite")).isTrue();
        Reconciler.Round up = r.reconcile("offsite");

        assertThat(up.shipped()).isEqualTo(2);
        assertThat(r.states().get("offsite").missing()).isZero();
        assertThat(r.states().get("offsite").missingBytes()).isZero();
    }

    @Test
    void aProbeThatHangsCountsAsDownWithinItsTimeoutAndStartsNoSecondCall() throws Exception {
        Reconciler r = reconciler(policy(List.of("offsite"), Map.of()));
        CountDownLatch release = new CountDownLatch(1);
        offsite.failNext(1, () -> {
            try {
                release.await();
            } catch (InterruptedException e) {
                Thread.currentThread().interrupt();
            }
            return new RetriableException("stalled");
        });
        try {
            long start = System.nanoTime();
            assertThat(r.probe("offsite")).isFalse();
            assertThat(r.probe("offsite")).isFalse();
            assertThat(Duration.ofNanos(System.nanoTime() - start)).isLessThan(Duration.ofSeconds(2));
            assertThat(r.states().get("offsite").probeError())
                    .hasValueSatisfying(e -> assertThat(e).contains("has not answered yet"));
        } finally {
            release.countDown();
        }
        org.awaitility.Awaitility.await().atMost(Duration.ofSeconds(10)).until(() -> r.probe("offsite"));
        assertThat(r.states().get("offsite").reachable()).isTrue();
    }

    @Test
    void aRoundAndTheEventPathShippingTheSamePointWriteItsManifestOnce() throws Exception {
        Manifest m = points.full(8);
        Reconciler r = reconciler(policy(List.of("offsite"), Map.of()));
        List<Boolean> sentBoth = java.util.Collections.synchronizedList(new ArrayList<>());
        Thread eventPath = new Thread(
                () -> sentBoth.add(!replicator.replicate(VM, m.id(), "offsite").alreadyThere()));
        eventPath.start();
        Reconciler.Round round = r.reconcile("offsite");
        eventPath.join(10_000);

        assertThat(round.shipped() + sentBoth.stream().filter(b -> b).count()).isEqualTo(1);
        assertThat(offsite.keys()).contains(ObjectKeys.manifest(VM, m.id()));
    }
}
