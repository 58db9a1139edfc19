package io.tidemark.scheduler;

import static org.assertj.core.api.Assertions.assertThat;
import static org.assertj.core.api.Assertions.tuple;
import static org.awaitility.Awaitility.await;
import static org.junit.jupiter.api.Assertions.assertThrows;

import io.tidemark.core.PermanentException;
import io.tidemark.core.bus.Topics;
import io.tidemark.core.event.ConsistencyPolicy;
import io.tidemark.core.event.SnapshotJob;
import io.tidemark.core.event.Trigger;
import io.tidemark.policies.Policy;
import io.tidemark.policies.PolicySet;
import io.tidemark.policies.Schedule;
import io.tidemark.policies.VmSelector;
import io.tidemark.scheduler.RecordingEventBus.Published;
import java.time.Clock;
import java.time.Duration;
import java.time.Instant;
import java.time.ZoneOffset;
import java.util.ArrayList;
import java.util.List;
import java.util.Map;
import java.util.Optional;
import java.util.OptionalLong;
import java.util.Properties;
import org.junit.jupiter.api.AfterEach;
import org.junit.jupiter.api.Test;

class PolicySchedulerTest {
    static final Instant NOW = Instant.parse("2025-03-01T12:00:00.123456Z");
    static final Clock CLOCK = Clock.fixed(NOW, ZoneOffset.UTC);
    static final Duration DEADLINE = Duration.ofSeconds(15);
    static final Schedule EVERY_SECOND = Schedule.Interval.every(Duration.ofSeconds(1));
    static final Schedule FAR_FUTURE = Schedule.Cron.of("0 0 0 1 1 ? 2099");

    final RecordingEventBus bus = new RecordingEventBus();
    final InMemoryInventory inventory = new InMemoryInventory()
            .put("web-1", "host-a", Map.of("tier", "web"))
            .put("web-2", "host-b", Map.of("tier", "web"))
            .put("db-1", "host-b", Map.of("tier", "db"))
            .put("web-3", "host-c", Map.of("tier", "cache"));
    final List<PolicyScheduler> started = new ArrayList<>();

    @AfterEach
    void stop() {
        started.forEach(PolicyScheduler::close);
    }

    private PolicyScheduler start(Policy... policies) {
        PolicyScheduler s = PolicyScheduler.start(PolicySet.of(policies), inventory, bus, CLOCK);
        started.add(s);
        return s;
    }

    static Policy policy(String name, VmSelector vms, Schedule schedule, String... targets) {
        return Policy.of(name, vms, schedule, Duration.ofHours(1), List.of(targets));
    }

    @Test
    void intervalPolicyPublishesOneJobPerFiringWithDeterministicIds() {
        start(policy("web", VmSelector.ofNames("web-1"), EVERY_SECOND, "offsite-s3"));

        await().atMost(DEADLINE).until(() -> bus.forPolicy("web").size() >= 2);

        List<Published> jobs = bus.forPolicy("web").subList(0, 2);
        for (Published p : jobs) {
            Instant scheduledFor = p.job().scheduledFor();
            assertThat(p.topic()).isEqualTo(Topics.jobs("host-a")).isEqualTo("tidemark.jobs.host-a");
            assertThat(p.key()).isEqualTo("web-1");
            assertThat(p.job())
                    .isEqualTo(new SnapshotJob(
                            "web-1",
                            "host-a",
                            "web",
                            Trigger.schedule("web"),
                            List.of("offsite-s3"),
                            scheduledFor,
                            Optional.of(ConsistencyPolicy.CRASH),
                            Optional.empty(),
                            OptionalLong.empty(),
                            // superseded by the next firing, one interval later
                            Optional.of(scheduledFor.plusSeconds(1)),
                            OptionalLong.empty()));
            assertThat(p.event().jobId()).isEqualTo("web/web-1/" + scheduledFor.toEpochMilli());
            assertThat(p.event().time()).isEqualTo(NOW);
        }
        assertThat(jobs).extracting(p -> p.event().jobId()).doesNotHaveDuplicates();
        assertThat(Duration.between(
                        jobs.get(0).job().scheduledFor(), jobs.get(1).job().scheduledFor()))
                .isEqualTo(Duration.ofSeconds(1));
    }

    @Test
    void labelSelectorRoutesEachVmToItsHostsTopic() {
        PolicyScheduler scheduler =
                start(policy("web", new VmSelector(List.of(), List.of(), Map.of("tier", "web")), FAR_FUTURE));

        Firing firing = scheduler.fireNow("web");

        assertThat(bus.published())
                .extracting(Published::topic, Published::key)
                .containsExactly(tuple("tidemark.jobs.host-a", "web-1"), tuple("tidemark.jobs.host-b", "web-2"));
        assertThat(bus.published()).allSatisfy(p -> assertThat(p.job().host())
                .isEqualTo(p.topic().substring(Topics.JOBS_PREFIX.length())));
        assertThat(firing.jobIds()).containsExactly("web/web-1/1740830400123", "web/web-2/1740830400123");
    }

    @Test
    void globAndLabelsTogetherNarrowTheSelection() {
        PolicyScheduler scheduler =
                start(policy("web", new VmSelector(List.of(), List.of("web-*"), Map.of("tier", "cache")), FAR_FUTURE));

        scheduler.fireNow("web");

        assertThat(bus.published())
                .extracting(Published::topic, Published::key)
                .containsExactly(tuple("tidemark.jobs.host-c", "web-3"));
    }

    @Test
    void fireNowPublishesImmediatelyAndDeterministically() {
        PolicyScheduler scheduler = start(policy("db", VmSelector.ofNames("db-1", "gone-1"), FAR_FUTURE, "dr"));

        Firing first = scheduler.fireNow("db");

        Instant millis = Instant.ofEpochMilli(NOW.toEpochMilli());
        assertThat(first).isEqualTo(new Firing("db", millis, List.of("db/db-1/1740830400123"), List.of()));
        assertThat(bus.published()).singleElement().satisfies(p -> {
            assertThat(p.topic()).isEqualTo("tidemark.jobs.host-b");
            assertThat(p.job())
                    .isEqualTo(new SnapshotJob(
                            "db-1",
                            "host-b",
                            "db",
                            Trigger.schedule("db"),
                            List.of("dr"),
                            millis,
                            Optional.of(ConsistencyPolicy.CRASH),
                            Optional.empty(),
                            OptionalLong.empty(),
                            Optional.of(Instant.parse("2099-01-01T00:00:00Z")),
                            OptionalLong.empty()));
        });
        assertThat(scheduler.fireNow("db").jobIds()).isEqualTo(first.jobIds());
        assertThat(scheduler.nextFireTime("db")).contains(Instant.parse("2099-01-01T00:00:00Z"));
    }

    @Test
    void fireNowOfAnUnknownPolicyIsAPermanentError() {
        PolicyScheduler scheduler = start(policy("db", VmSelector.ofNames("db-1"), FAR_FUTURE));
        PermanentException e = assertThrows(PermanentException.class, () -> scheduler.fireNow("nope"));
        assertThat(e).hasMessage("no policy named 'nope'; loaded: db");
    }

    @Test
    void aPolicyMatchingNothingPublishesNothing() {
        PolicyScheduler scheduler = start(policy("ghost", VmSelector.ofNames("gone-1"), FAR_FUTURE));
        assertThat(scheduler.fireNow("ghost").jobIds()).isEmpty();
        assertThat(bus.published()).isEmpty();
    }

    @Test
    void reloadWithARemovedPolicyStopsItsFirings() {
        Policy a = policy("a", VmSelector.ofNames("web-1"), EVERY_SECOND);
        Policy b = policy("b", VmSelector.ofNames("db-1"), EVERY_SECOND);
        PolicyScheduler scheduler = start(a, b);
        await().atMost(DEADLINE)
                .until(() ->
                        !bus.forPolicy("a").isEmpty() && !bus.forPolicy("b").isEmpty());

        scheduler.reload(PolicySet.of(b));
        int aAfterReload = bus.forPolicy("a").size();
        int bAfterReload = bus.forPolicy("b").size();

        // observe for as long as b takes to fire twice more: a must stay silent meanwhile
        await().atMost(DEADLINE).until(() -> bus.forPolicy("b").size() >= bAfterReload + 2);
        assertThat(bus.forPolicy("a")).hasSize(aAfterReload);
        assertThat(scheduler.nextFireTime("a")).isEmpty();
        assertThat(scheduler.policies().names()).containsExactly("b");
        assertThrows(PermanentException.class, () -> scheduler.fireNow("a"));
    }

    @Test
    void reloadOfAPolicyWhoseScheduleDidNotChangeKeepsItsTriggerAndFiresNothingExtra() {
        // with a Quartz JDBC cluster every scheduler reloads the same change: the second one sees
        // the schedule it would store stored already, and must not replace (and so re-fire) it
        Schedule hourly = Schedule.Interval.every(Duration.ofHours(1));
        PolicyScheduler scheduler = start(policy("p", VmSelector.ofNames("web-1"), hourly, "old-target"));
        await().atMost(DEADLINE).until(() -> bus.forPolicy("p").size() == 1); // the firing at start
        await().atMost(DEADLINE).until(() -> scheduler
                .nextFireTime("p")
                .map(t -> t.isAfter(Instant.now().plus(Duration.ofMinutes(30))))
                .orElse(false));
        Instant next = scheduler.nextFireTime("p").orElseThrow();

        scheduler.reload(PolicySet.of(policy("p", VmSelector.ofNames("web-1"), hourly, "new-target")));

        assertThat(scheduler.nextFireTime("p")).contains(next);
        await().during(Duration.ofSeconds(2))
                .atMost(Duration.ofSeconds(5))
                .until(() -> bus.forPolicy("p").size() == 1);
        scheduler.fireNow("p");
        assertThat(bus.forPolicy("p").get(1).job().targets()).containsExactly("new-target");
    }

    @Test
    void reloadReschedulesChangedPoliciesAndKeepsUnchangedOnes() {
        Policy web = policy("web", VmSelector.ofNames("web-1"), EVERY_SECOND, "old-target");
        Policy yearly = policy("yearly", VmSelector.ofNames("db-1"), Schedule.Cron.of("0 0 0 1 1 ?"));
        PolicyScheduler scheduler = start(web, yearly);
        await().atMost(DEADLINE).until(() -> !bus.forPolicy("web").isEmpty());
        Instant yearlyNext = scheduler.nextFireTime("yearly").orElseThrow();

        Policy changed = policy("web", VmSelector.ofNames("web-1"), EVERY_SECOND, "new-target");
        Policy added = policy("added", VmSelector.ofNames("web-2"), EVERY_SECOND);
        scheduler.reload(PolicySet.of(changed, yearly, added));
        int webBefore = bus.forPolicy("web").size();

        await().atMost(DEADLINE)
                .until(() -> bus.forPolicy("web").size() >= webBefore + 2
                        && !bus.forPolicy("added").isEmpty());
        assertThat(bus.forPolicy("web").subList(webBefore, bus.forPolicy("web").size()))
                .allSatisfy(p -> assertThat(p.job().targets()).containsExactly("new-target"));
        assertThat(scheduler.nextFireTime("yearly")).contains(yearlyNext);
    }

    @Test
    void aFailedPublishIsIsolatedAndDoesNotStopTheScheduler() {
        bus.failFor("web-1");
        PolicyScheduler scheduler = start(policy("web", VmSelector.ofNames("web-1", "web-2"), EVERY_SECOND));

        await().atMost(DEADLINE).until(() -> bus.forPolicy("web").size() >= 2);
        assertThat(bus.forPolicy("web")).extracting(Published::key).containsOnly("web-2");

        Firing firing = scheduler.fireNow("web");
        assertThat(firing.failedVms()).containsExactly("web-1");
        assertThat(firing.jobIds()).containsExactly("web/web-2/1740830400123");
    }

    @Test
    void cronJitterDelaysTheFiringButKeepsTheCronTimeInTheJobId() {
        Policy jittered =
                policy("jit", VmSelector.ofNames("web-1"), new Schedule.Cron("* * * * * ?", Duration.ofMillis(700)));
        // fixed by the policy's name: floorMod("jit".hashCode() * 0x9E3779B9, 700 ms)
        assertThat(PolicyScheduler.jitterOffsetMillis(jittered)).isEqualTo(253L);
        start(jittered);

        await().atMost(DEADLINE).until(() -> bus.forPolicy("jit").size() >= 2);
        assertThat(bus.forPolicy("jit")).hasSizeGreaterThanOrEqualTo(2).allSatisfy(p -> {
            assertThat(p.job().scheduledFor().toEpochMilli() % 1000).isZero();
            assertThat(p.event().jobId())
                    .isEqualTo("jit/web-1/" + p.job().scheduledFor().toEpochMilli());
        });
    }

    @Test
    void eachInstanceHasItsOwnQuartzScheduler() {
        PolicyScheduler one = start(policy("a", VmSelector.ofNames("web-1"), FAR_FUTURE));
        PolicyScheduler two = start(policy("a", VmSelector.ofNames("web-2"), FAR_FUTURE));
        assertThat(one.schedulerName()).isNotEqualTo(two.schedulerName());

        two.fireNow("a");
        assertThat(bus.published()).singleElement().extracting(Published::key).isEqualTo("web-2");

        Properties sameName = new Properties();
        sameName.setProperty("org.quartz.scheduler.instanceName", one.schedulerName());
        assertThrows(
                PermanentException.class,
                () -> PolicyScheduler.start(PolicySet.empty(), inventory, bus, CLOCK, sameName));
    }

    @Test
    void closeIsIdempotentAndRefusesLaterUse() {
        PolicyScheduler scheduler = start(policy("web", VmSelector.ofNames("web-1"), EVERY_SECOND));
        await().atMost(DEADLINE).until(() -> !bus.forPolicy("web").isEmpty());
        scheduler.close();
        scheduler.close();
        assertThat(scheduler.nextFireTime("web")).isEmpty();
        assertThrows(IllegalStateException.class, () -> scheduler.fireNow("web"));
        assertThrows(IllegalStateException.class, () -> scheduler.reload(PolicySet.empty()));
    }
}
