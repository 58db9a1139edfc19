package io.tidemark.scheduler.hook;

import static org.assertj.core.api.Assertions.assertThat;
import static org.assertj.core.api.Assertions.assertThatThrownBy;

import io.tidemark.core.PermanentException;
import io.tidemark.core.RetriableException;
import io.tidemark.core.bus.EventBus;
import io.tidemark.core.bus.Topics;
import io.tidemark.core.event.Event;
import io.tidemark.core.event.EventPayload;
import io.tidemark.core.event.JobFailed;
import io.tidemark.core.event.RestorePointCreated;
import io.tidemark.core.event.SnapshotCaptured;
import io.tidemark.core.event.SnapshotJob;
import io.tidemark.core.event.TriggerKind;
import io.tidemark.policies.Policy;
import io.tidemark.policies.PolicySet;
import io.tidemark.policies.Schedule;
import io.tidemark.policies.VmSelector;
import io.tidemark.scheduler.InMemoryInventory;
import io.tidemark.scheduler.hook.FakeDownstream.Outcome;
import io.tidemark.testkit.FakeClock;
import io.tidemark.testkit.RecordingEventBus;
import java.time.Clock;
import java.time.Duration;
import java.time.Instant;
import java.time.ZoneId;
import java.util.List;
import java.util.Map;
import java.util.Optional;
import java.util.concurrent.CompletableFuture;
import java.util.concurrent.CountDownLatch;
import java.util.concurrent.TimeUnit;
import java.util.concurrent.atomic.AtomicInteger;
import java.util.concurrent.atomic.AtomicReference;
import org.junit.jupiter.api.Test;

class HookServiceTest {

    static final Instant T0 = Instant.parse("2026-11-24T10:00:00Z");
    static final Duration TEN_MINUTES = Duration.ofMinutes(10);

    private final FakeClock clock = new FakeClock(T0);
    private final RecordingEventBus bus = new RecordingEventBus();
    private final InMemoryInventory inventory = new InMemoryInventory()
            .put("shop-1", "hv1", Map.of("app", "shop"))
            .put("shop-2", "hv2", Map.of("app", "shop"))
            .put("db-1", "hv1", Map.of("app", "db"));
    private final FakeDownstream downstream = new FakeDownstream(bus, clock, List.of("hv1", "hv2"));

    static Policy policy(String name, VmSelector vms, List<String> targets, String... apps) {
        return Policy.of(name, vms, Schedule.Interval.every(Duration.ofHours(1)), Duration.ofHours(2), targets)
                .withPreDeployApps(List.of(apps));
    }

    static VmSelector label(String app) {
        return new VmSelector(List.of(), List.of(), Map.of("app", app));
    }

    private final HookService service = service(clock);

    private HookService service(Clock serviceClock) {
        return new HookService(
                PolicySet.of(
                        policy("shop", label("shop"), List.of("offsite"), "shop", "checkout"),
                        policy("nightly", VmSelector.ofNames("db-1"), List.of())),
                inventory,
                bus,
                serviceClock);
    }

    /**
     * The test's clock, which also says when a given thread first read it: the waiter reads the
     * clock under the watch's lock before it looks at the progress, so once it has, an event
     * published afterwards is handled only after the waiter saw the state without it.
     */
    private static final class ReadSignallingClock extends Clock {
        private final Clock delegate;
        private final AtomicReference<Thread> reader = new AtomicReference<>();
        private final CountDownLatch read = new CountDownLatch(1);

        ReadSignallingClock(Clock delegate) {
            this.delegate = delegate;
        }

        <T> T readBy(java.util.function.Supplier<T> work) {
            reader.set(Thread.currentThread());
            return work.get();
        }

        void awaitRead() throws InterruptedException {
            assertThat(read.await(10, TimeUnit.SECONDS))
                    .as("the waiter read the clock in time")
                    .isTrue();
        }

        @Override
        public Instant instant() {
            if (Thread.currentThread() == reader.get()) {
                read.countDown();
            }
            return delegate.instant();
        }

        @Override
        public ZoneId getZone() {
            return delegate.getZone();
        }

        @Override
        public Clock withZone(ZoneId zone) {
            return this;
        }
    }

    static PreDeployHook hook(String app) {
        return new PreDeployHook(app, "4f2a9c1", "build-118", Optional.empty());
    }

    static PreDeployHook waiting(String app, WaitLevel level) {
        return hook(app).waitingFor(level);
    }

    private List<RecordingEventBus.Published> jobsPublished() {
        return bus.published().stream()
                .filter(p -> p.topic().startsWith(Topics.JOBS_PREFIX))
                .toList();
    }

    @Test
    void publishesOneJobPerVmToItsHostTaggedWithTheHook() {
        downstream.otherwise(Outcome.NOTHING);
        Submission s = service.submit(hook("shop"));

        assertThat(s.jobs()).extracting(Submission.Job::vm).containsExactly("shop-1", "shop-2");
        assertThat(s.jobIds())
                .containsExactly("hook/shop/4f2a9c1/build-118/shop-1", "hook/shop/4f2a9c1/build-118/shop-2");
        assertThat(s.watching()).isFalse();
        assertThat(jobsPublished())
                .extracting(RecordingEventBus.Published::topic, RecordingEventBus.Published::key)
                .containsExactly(
                        org.assertj.core.groups.Tuple.tuple("tidemark.jobs.hv1", "shop-1"),
                        org.assertj.core.groups.Tuple.tuple("tidemark.jobs.hv2", "shop-2"));
        RecordingEventBus.Published first = jobsPublished().get(0);
        assertThat(first.event().jobId()).isEqualTo("hook/shop/4f2a9c1/build-118/shop-1");
        SnapshotJob job = (SnapshotJob) first.event().payload();
        assertThat(job.vm()).isEqualTo("shop-1");
        assertThat(job.host()).isEqualTo("hv1");
        assertThat(job.policy()).isEqualTo("shop");
        assertThat(job.targets()).containsExactly("offsite");
        assertThat(job.scheduledFor()).isEqualTo(T0);
        assertThat(job.trigger().kind()).isEqualTo(TriggerKind.HOOK);
        assertThat(job.trigger().attributes())
                .isEqualTo(Map.of("app", "shop", "commit", "4f2a9c1", "pipeline", "build-118"));
        assertThatThrownBy(() -> service.await(s, WaitLevel.CAPTURED, TEN_MINUTES))
                .isInstanceOf(IllegalStateException.class);
    }

    @Test
    void theSameHookTwicePublishesTheSameJobIds() {
        downstream.otherwise(Outcome.NOTHING);
        List<String> first = service.submit(hook("shop")).jobIds();
        clock.advance(Duration.ofMinutes(3));
        List<String> second = service.submit(hook("shop")).jobIds();

        assertThat(second).isEqualTo(first);
        assertThat(jobsPublished())
                .extracting(p -> p.event().jobId())
                .containsExactly(first.get(0), first.get(1), first.get(0), first.get(1));
        assertThat(service.submit(new PreDeployHook("shop", "4f2a9c1", "build-119", Optional.empty()))
                        .jobIds())
                .doesNotContainAnyElementsOf(first);
    }

    @Test
    void jobIdsEscapeEveryCharacterThatIsNotPlain() {
        assertThat(HookService.jobId("shop", "v1.2_rc-3", "https://ci/p/7", "web 1"))
                .isEqualTo("hook/shop/v1.2_rc-3/https%3A%2F%2Fci%2Fp%2F7/web%201");
        assertThat(HookService.jobId("a/b", "c", "p", "vm")).isNotEqualTo(HookService.jobId("a", "b/c", "p", "vm"));
        assertThat(HookService.jobId("a%2F", "c", "p", "vm")).isEqualTo("hook/a%252F/c/p/vm");
        assertThat(HookService.jobId("é", "c", "p", "vm")).isEqualTo("hook/%C3%A9/c/p/vm");
    }

    @Test
    void unknownAppIsRefusedNamingTheAppAndTheKnownApps() {
        assertThatThrownBy(() -> service.submit(waiting("web", WaitLevel.CAPTURED)))
                .isInstanceOf(UnknownAppException.class)
                .hasMessageContaining("'web'")
                .hasMessageContaining("known apps: checkout, shop")
                .satisfies(
                        e -> assertThat(((UnknownAppException) e).knownApps()).containsExactly("checkout", "shop"));
        assertThat(bus.published()).isEmpty();
    }

    @Test
    void appWhosePoliciesSelectNoKnownVmIsRefused() {
        service.setPolicies(PolicySet.of(policy("ghost", VmSelector.ofNames("gone-1"), List.of(), "ghost")));

        assertThatThrownBy(() -> service.submit(hook("ghost")))
                .isInstanceOf(PermanentException.class)
                .isNotInstanceOf(UnknownAppException.class)
                .hasMessageContaining("policies that list it (ghost) select no VM");
        assertThat(bus.published()).isEmpty();
    }

    @Test
    void aVmOfSeveralPoliciesGetsOneJobReplicatingToTheUnionOfTheirTargets() {
        downstream.otherwise(Outcome.NOTHING);
        service.setPolicies(PolicySet.of(
                policy("b-shop", label("shop"), List.of("offsite", "dr"), "shop"),
                policy("a-shop", VmSelector.ofNames("shop-1"), List.of("nas", "offsite"), "shop")));

        Submission s = service.submit(hook("shop"));

        assertThat(s.jobs())
                .extracting(Submission.Job::vm, Submission.Job::policy, Submission.Job::targets)
                .containsExactly(
                        org.assertj.core.groups.Tuple.tuple("shop-1", "a-shop", List.of("nas", "offsite", "dr")),
                        org.assertj.core.groups.Tuple.tuple("shop-2", "b-shop", List.of("offsite", "dr")));
    }

    @Test
    void capturedIsReachedWhenEveryJobIsCaptured() {
        downstream.otherwise(Outcome.CAPTURED);

        try (Submission s = service.submit(waiting("shop", WaitLevel.CAPTURED))) {
            HookResult r = service.await(s, WaitLevel.CAPTURED, TEN_MINUTES);

            assertThat(r.status()).isEqualTo(HookResult.Status.REACHED);
            assertThat(r.reached()).isTrue();
            assertThat(r.failure()).isEmpty();
            assertThat(r.vms()).extracting(HookResult.VmResult::vm).containsExactly("shop-1", "shop-2");
            assertThat(r.vms()).allSatisfy(v -> {
                assertThat(v.reached()).isTrue();
                assertThat(v.capturedAt()).contains(T0);
                assertThat(v.restorePointId()).isEmpty();
            });
            assertThat(r.vms().get(0).capturedAfter()).contains(Duration.ofSeconds(1));
            assertThat(r.vms().get(1).capturedAfter()).contains(Duration.ofSeconds(2));
            assertThat(r.elapsed()).isEqualTo(Duration.ofSeconds(2));
            assertThat(r.summary()).isEqualTo("2 VMs captured in 2.0 s; the deploy may proceed");
        }
    }

    @Test
    void committedWaitsForEveryRestorePoint() throws Exception {
        downstream.on("shop-1", Outcome.COMMITTED).on("shop-2", Outcome.CAPTURED);

        ReadSignallingClock signalling = new ReadSignallingClock(clock);
        HookService service = service(signalling);
        try (Submission s = service.submit(waiting("shop", WaitLevel.COMMITTED))) {
            CompletableFuture<HookResult> wait = CompletableFuture.supplyAsync(
                    () -> signalling.readBy(() -> service.await(s, WaitLevel.COMMITTED, TEN_MINUTES)));
            // the waiter has looked at the progress (shop-2 only captured) before the late point is published
            signalling.awaitRead();
            publish(Topics.RESTORE_POINTS, s.jobIds().get(1), created("shop-2", "rp-late"));

            HookResult r = wait.get(10, TimeUnit.SECONDS);
            assertThat(r.status()).isEqualTo(HookResult.Status.REACHED);
            assertThat(r.vms())
                    .extracting(v -> v.restorePointId().orElseThrow())
                    .containsExactly("rp-shop-1", "rp-late");
            assertThat(r.vms().get(0).committedAfter()).contains(Duration.ofSeconds(2));
        }
    }

    @Test
    void replicatedNeedsEveryTargetOfTheJob() {
        service.setPolicies(PolicySet.of(policy("shop", label("shop"), List.of("offsite", "dr"), "shop")));
        downstream.otherwise(Outcome.REPLICATED);

        try (Submission s = service.submit(waiting("shop", WaitLevel.REPLICATED))) {
            HookResult r = service.await(s, WaitLevel.REPLICATED, TEN_MINUTES);

            assertThat(r.status()).isEqualTo(HookResult.Status.REACHED);
            HookResult.VmResult v = r.vms().get(0);
            assertThat(v.replicatedTo()).containsExactly("offsite", "dr");
            assertThat(v.capturedAfter()).contains(Duration.ofSeconds(1));
            assertThat(v.committedAfter()).contains(Duration.ofSeconds(2));
            assertThat(v.replicatedAfter()).contains(Duration.ofSeconds(4));
        }
    }

    @Test
    void replicatedIsNotReachedWhileATargetLacksTheRestorePoint() {
        downstream.otherwise(Outcome.COMMITTED);

        try (Submission s = service.submit(waiting("shop", WaitLevel.REPLICATED))) {
            clock.advance(TEN_MINUTES);
            HookResult r = service.await(s, WaitLevel.REPLICATED, TEN_MINUTES);

            assertThat(r.status()).isEqualTo(HookResult.Status.TIMED_OUT);
            assertThat(r.vms()).extracting(HookResult.VmResult::vm).containsExactly("shop-1", "shop-2");
            assertThat(r.vms()).allSatisfy(v -> assertThat(v.reached()).isFalse());
            assertThat(service.await(s, WaitLevel.COMMITTED, TEN_MINUTES).status())
                    .isEqualTo(HookResult.Status.REACHED);
        }
    }

    @Test
    void aRestorePointAlsoCountsAsCapturedForAJobThatWasDoneBefore() {
        downstream.otherwise(Outcome.NOTHING);

        try (Submission s = service.submit(waiting("shop", WaitLevel.CAPTURED))) {
            // a redelivered job whose restore point exists: the worker announces only the commit again
            s.jobIds().forEach(id -> publish(Topics.RESTORE_POINTS, id, created(vmOf(id), "rp-old")));

            HookResult r = service.await(s, WaitLevel.CAPTURED, TEN_MINUTES);
            assertThat(r.status()).isEqualTo(HookResult.Status.REACHED);
            assertThat(r.vms()).extracting(HookResult.VmResult::vm).containsExactly("shop-1", "shop-2");
            assertThat(r.vms()).allSatisfy(v -> assertThat(v.restorePointId()).contains("rp-old"));
        }
    }

    @Test
    void eventsOfOtherJobsAreIgnored() {
        downstream.otherwise(Outcome.NOTHING);

        try (Submission s = service.submit(waiting("shop", WaitLevel.CAPTURED))) {
            publish(Topics.JOB_STATUS, "shop/shop-1/1700000000000", new SnapshotCaptured("shop-1", T0));
            publish(
                    Topics.JOB_STATUS,
                    "hook/shop/4f2a9c1/build-117/shop-1",
                    new JobFailed("shop-1", "backup", "x", false));
            clock.advance(TEN_MINUTES);

            assertThat(service.await(s, WaitLevel.CAPTURED, TEN_MINUTES).status())
                    .isEqualTo(HookResult.Status.TIMED_OUT);
        }
    }

    @Test
    void aJobFailedFailsTheWaitAtOnceWithItsMessage() {
        downstream.on("shop-1", Outcome.NOTHING).on("shop-2", Outcome.FAILED);

        try (Submission s = service.submit(waiting("shop", WaitLevel.CAPTURED))) {
            HookResult r = service.await(s, WaitLevel.CAPTURED, TEN_MINUTES);

            assertThat(r.status()).isEqualTo(HookResult.Status.FAILED);
            HookResult.Failure f = r.failure().orElseThrow();
            assertThat(f.vm()).isEqualTo("shop-2");
            assertThat(f.host()).isEqualTo("hv2");
            assertThat(f.jobId()).isEqualTo("hook/shop/4f2a9c1/build-118/shop-2");
            assertThat(f.stage()).isEqualTo("backup");
            assertThat(f.error()).isEqualTo("QMP socket refused");
            assertThat(r.elapsed()).isEqualTo(Duration.ofSeconds(1));
            assertThat(r.summary())
                    .contains("snapshot of VM shop-2 failed at backup: QMP socket refused")
                    .contains("do not deploy")
                    .contains("host hv2");
        }
    }

    @Test
    void aFailureOfAnEarlierAttemptIsIgnored() {
        downstream.otherwise(Outcome.NOTHING);

        try (Submission s = service.submit(waiting("shop", WaitLevel.CAPTURED))) {
            for (String id : s.jobIds()) {
                // history replayed to the new consumer group: a retriable failure, then the success
                bus.publish(
                        Topics.JOB_STATUS,
                        vmOf(id),
                        Event.of(id, T0.minusSeconds(60), new JobFailed(vmOf(id), "backup", "busy", true)));
                publish(Topics.JOB_STATUS, id, new SnapshotCaptured(vmOf(id), T0.minusSeconds(30)));
            }

            assertThat(service.await(s, WaitLevel.CAPTURED, TEN_MINUTES).status())
                    .isEqualTo(HookResult.Status.REACHED);
        }
    }

    @Test
    void aFailureAfterTheLevelWasReachedDoesNotFailTheWait() {
        downstream.otherwise(Outcome.COMMITTED);

        try (Submission s = service.submit(waiting("shop", WaitLevel.COMMITTED))) {
            publish(
                    Topics.JOB_STATUS,
                    s.jobIds().get(0),
                    new JobFailed("shop-1", "replicate", "offsite: access denied", false));

            assertThat(service.await(s, WaitLevel.COMMITTED, TEN_MINUTES).status())
                    .isEqualTo(HookResult.Status.REACHED);
            HookResult replicated = service.await(s, WaitLevel.REPLICATED, TEN_MINUTES);
            assertThat(replicated.status()).isEqualTo(HookResult.Status.FAILED);
            assertThat(replicated.failure().orElseThrow().error()).isEqualTo("offsite: access denied");
        }
    }

    @Test
    void timesOutOnceTheTimeoutHasPassedSinceTheSubmission() {
        downstream.on("shop-1", Outcome.CAPTURED).on("shop-2", Outcome.NOTHING);

        try (Submission s = service.submit(waiting("shop", WaitLevel.CAPTURED))) {
            clock.set(T0.plus(TEN_MINUTES));
            HookResult r = service.await(s, WaitLevel.CAPTURED, TEN_MINUTES);

            assertThat(r.status()).isEqualTo(HookResult.Status.TIMED_OUT);
            assertThat(r.elapsed()).isEqualTo(TEN_MINUTES);
            assertThat(r.vms()).extracting(HookResult.VmResult::reached).containsExactly(true, false);
            assertThat(r.summary())
                    .startsWith("timed out after 600.0 s waiting for shop-2 to be captured")
                    .contains("workers of hosts hv2 run");
        }
    }

    @Test
    void aWaitingCallerTimesOutWhenTheClockPassesTheDeadline() throws Exception {
        downstream.otherwise(Outcome.NOTHING);

        try (Submission s = service.submit(waiting("shop", WaitLevel.CAPTURED))) {
            CompletableFuture<HookResult> wait =
                    CompletableFuture.supplyAsync(() -> service.await(s, WaitLevel.CAPTURED, TEN_MINUTES));
            clock.advance(TEN_MINUTES.plusSeconds(1));

            assertThat(wait.get(10, TimeUnit.SECONDS).status()).isEqualTo(HookResult.Status.TIMED_OUT);
        }
    }

    @Test
    void aClosedSubmissionNoLongerWatches() {
        CountingBus counting = new CountingBus(bus);
        HookService svc = new HookService(
                PolicySet.of(policy("shop", label("shop"), List.of(), "shop")), inventory, counting, clock);
        Submission s = svc.submit(waiting("shop", WaitLevel.CAPTURED));
        assertThat(counting.open.get()).isEqualTo(1);

        s.close();
        s.close();

        assertThat(svc.waiting()).isZero();
        assertThat(s.watching()).isFalse();
        assertThat(counting.open.get()).isEqualTo(1); // the shared subscription outlives one submission
        svc.close();
        assertThat(counting.open.get()).isZero();
        assertThatThrownBy(() -> svc.await(s, WaitLevel.CAPTURED, TEN_MINUTES))
                .isInstanceOf(IllegalStateException.class);
    }

    @Test
    void aFailedPublishStopsTheWatchAndPropagates() {
        CountingBus counting = new CountingBus(bus);
        counting.failJobs = true;
        HookService svc = new HookService(
                PolicySet.of(policy("shop", label("shop"), List.of(), "shop")), inventory, counting, clock);

        assertThatThrownBy(() -> svc.submit(waiting("shop", WaitLevel.CAPTURED)))
                .isInstanceOf(RetriableException.class);
        assertThat(svc.waiting()).isZero();
    }

    @Test
    void theWatchStartsBeforeTheFirstJobIsPublishedAndIsSharedByLaterHooks() {
        CountingBus counting = new CountingBus(bus);
        HookService svc = new HookService(
                PolicySet.of(policy("shop", label("shop"), List.of(), "shop")), inventory, counting, clock);
        svc.submit(waiting("shop", WaitLevel.CAPTURED)).close();

        assertThat(counting.calls).containsExactly("subscribe", "publish", "publish");
        assertThat(counting.groups).singleElement().asString().startsWith("tidemark-hook-");
        svc.submit(waiting("shop", WaitLevel.CAPTURED)).close();
        // no consumer group per hook: joining one cost ~300 ms per hook
        assertThat(counting.groups).hasSize(1);
        assertThat(counting.calls).containsExactly("subscribe", "publish", "publish", "publish", "publish");
    }

    private void publish(String topic, String jobId, EventPayload payload) {
        bus.publish(topic, payload.vm(), Event.of(jobId, clock.instant(), payload));
    }

    private static RestorePointCreated created(String vm, String id) {
        return new RestorePointCreated(vm, id, "shop", List.of("offsite"), T0, 1, 1);
    }

    private static String vmOf(String jobId) {
        return jobId.substring(jobId.lastIndexOf('/') + 1);
    }

    /** A bus that counts open subscriptions, records the order of calls, and can refuse job events. */
    static final class CountingBus implements EventBus {
        final EventBus delegate;
        final AtomicInteger open = new AtomicInteger();
        final List<String> calls = new java.util.concurrent.CopyOnWriteArrayList<>();
        final List<String> groups = new java.util.concurrent.CopyOnWriteArrayList<>();
        volatile boolean failJobs;

        CountingBus(EventBus delegate) {
            this.delegate = delegate;
        }

        @Override
        public void publish(String topic, String key, Event event) {
            calls.add("publish");
            if (failJobs && topic.startsWith(Topics.JOBS_PREFIX)) {
                throw new RetriableException("broker down");
            }
            delegate.publish(topic, key, event);
        }

        @Override
        public Subscription subscribe(String group, List<String> topics, EventHandler handler) {
            calls.add("subscribe");
            groups.add(group);
            Subscription s = delegate.subscribe(group, topics, handler);
            open.incrementAndGet();
            return () -> {
                open.decrementAndGet();
                s.close();
            };
        }

        @Override
        public void close() {
            delegate.close();
        }
    }

    static BackupRequest backup(String vm, String policy, String requestId, WaitLevel level) {
        return new BackupRequest(vm, Optional.ofNullable(policy), requestId, level, TEN_MINUTES);
    }

    @Test
    void aBackupPublishesOneManualJobForTheVmUnderThePolicyThatSelectsIt() {
        try (Submission s = service.backup(backup("shop-2", null, "req-7", WaitLevel.COMMITTED))) {
            HookResult r = service.await(s, WaitLevel.COMMITTED, TEN_MINUTES);

            assertThat(r.status()).isEqualTo(HookResult.Status.REACHED);
            assertThat(r.vms()).singleElement().satisfies(v -> {
                assertThat(v.restorePointId()).contains("rp-shop-2");
                assertThat(v.jobId()).isEqualTo("manual/req-7/shop-2");
                assertThat(v.policy()).isEqualTo("shop");
            });
        }
        assertThat(jobsPublished()).singleElement().satisfies(p -> {
            assertThat(p.topic()).isEqualTo("tidemark.jobs.hv2");
            assertThat(p.key()).isEqualTo("shop-2");
            assertThat(p.event().jobId()).isEqualTo("manual/req-7/shop-2");
            SnapshotJob job = (SnapshotJob) p.event().payload();
            assertThat(job.trigger().kind()).isEqualTo(TriggerKind.MANUAL);
            assertThat(job.trigger().attributes()).isEqualTo(Map.of("requestId", "req-7"));
            assertThat(job.policy()).isEqualTo("shop");
            assertThat(job.targets()).containsExactly("offsite");
            assertThat(job.scheduledFor()).isEqualTo(T0);
        });
    }

    @Test
    void aRepeatedBackupRequestPublishesNothingAndAnswersTheFirstJobsOutcome() {
        try (Submission first = service.backup(backup("db-1", null, "req-1", WaitLevel.COMMITTED))) {
            assertThat(service.await(first, WaitLevel.COMMITTED, TEN_MINUTES).reached())
                    .isTrue();
        }
        clock.advance(Duration.ofMinutes(5));

        try (Submission again = service.backup(backup("db-1", null, "req-1", WaitLevel.COMMITTED))) {
            HookResult r = service.await(again, WaitLevel.COMMITTED, TEN_MINUTES);

            assertThat(r.status()).isEqualTo(HookResult.Status.REACHED);
            assertThat(r.vms().get(0).restorePointId()).contains("rp-db-1");
        }
        assertThat(jobsPublished()).extracting(p -> p.event().jobId()).containsExactly("manual/req-1/db-1");

        // another request id is another job
        service.backup(backup("db-1", null, "req-2", WaitLevel.CAPTURED)).close();
        assertThat(jobsPublished())
                .extracting(p -> p.event().jobId())
                .containsExactly("manual/req-1/db-1", "manual/req-2/db-1");
    }

    @Test
    void aBackupRunsUnderTheNamedPolicyWhenItSelectsTheVm() {
        service.setPolicies(PolicySet.of(
                policy("a-all", label("shop"), List.of()), policy("b-offsite", label("shop"), List.of("offsite"))));

        service.backup(backup("shop-1", "b-offsite", "r", WaitLevel.CAPTURED)).close();
        service.backup(backup("shop-2", null, "r", WaitLevel.CAPTURED)).close();

        assertThat(jobsPublished())
                .extracting(p -> ((SnapshotJob) p.event().payload()).policy())
                .containsExactly("b-offsite", "a-all");
    }

    @Test
    void aBackupOfAnUnknownVmNamesTheKnownVmsSortedAndPublishesNothing() {
        assertThatThrownBy(() -> service.backup(backup("shop-9", null, "r", WaitLevel.CAPTURED)))
                .isInstanceOf(UnknownVmException.class)
                .hasMessageContaining("no VM 'shop-9'")
                .hasMessageContaining("it knows db-1, shop-1, shop-2");
        assertThat(bus.published()).isEmpty();
    }

    @Test
    void theKnownVmsNamedAreBounded() {
        for (int i = 0; i < 30; i++) {
            inventory.put(String.format("vm-%02d", i), "hv1", Map.of());
        }
        assertThatThrownBy(() -> service.backup(backup("nope", null, "r", WaitLevel.CAPTURED)))
                .isInstanceOf(UnknownVmException.class)
                .hasMessageContaining("db-1, shop-1, shop-2, vm-00")
                .hasMessageContaining("vm-16 and 13 more")
                .satisfies(e -> assertThat(((UnknownVmException) e).knownVms()).hasSize(33));
    }

    @Test
    void aNamedPolicyThatDoesNotSelectTheVmIsRefusedNamingThoseThatDo() {
        assertThatThrownBy(() -> service.backup(backup("db-1", "shop", "r", WaitLevel.CAPTURED)))
                .isInstanceOf(PolicyMismatchException.class)
                .hasMessageContaining("policy 'shop' does not select VM 'db-1'; the policies that do: nightly");
        assertThatThrownBy(() -> service.backup(backup("db-1", "nosuch", "r", WaitLevel.CAPTURED)))
                .isInstanceOf(PolicyMismatchException.class)
                .hasMessageContaining("the policies that do: nightly");
        assertThat(bus.published()).isEmpty();
    }

    @Test
    void aVmNoPolicySelectsIsRefused() {
        inventory.put("stray", "hv1", Map.of());

        assertThatThrownBy(() -> service.backup(backup("stray", null, "r", WaitLevel.CAPTURED)))
                .isInstanceOf(PolicyMismatchException.class)
                .hasMessageContaining("no policy selects VM 'stray'");
        assertThat(bus.published()).isEmpty();
    }

    @Test
    void aFailedBackupAnswersItsFailureAgainToARepeat() {
        downstream.on("db-1", Outcome.FAILED);
        try (Submission s = service.backup(backup("db-1", null, "r", WaitLevel.COMMITTED))) {
            assertThat(service.await(s, WaitLevel.COMMITTED, TEN_MINUTES).status())
                    .isEqualTo(HookResult.Status.FAILED);
        }
        try (Submission s = service.backup(backup("db-1", null, "r", WaitLevel.COMMITTED))) {
            HookResult r = service.await(s, WaitLevel.COMMITTED, TEN_MINUTES);
            assertThat(r.status()).isEqualTo(HookResult.Status.FAILED);
            assertThat(r.failure().orElseThrow().error()).isEqualTo("QMP socket refused");
        }
        assertThat(jobsPublished()).hasSize(1);
    }
}
