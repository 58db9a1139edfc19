package io.tidemark.engine;

import static org.assertj.core.api.Assertions.assertThat;

import com.fasterxml.jackson.databind.JsonNode;
import io.tidemark.core.event.Event;
import io.tidemark.core.event.FailureReason;
import io.tidemark.core.event.JobFailed;
import io.tidemark.core.event.ReplicaCommitted;
import io.tidemark.core.event.RestorePointCreated;
import io.tidemark.core.event.SnapshotJob;
import io.tidemark.core.event.Trigger;
import io.tidemark.core.event.TriggerKind;
import io.tidemark.format.Json;
import io.tidemark.policies.Policy;
import io.tidemark.policies.PolicySet;
import io.tidemark.policies.Schedule;
import io.tidemark.policies.VmSelector;
import io.tidemark.replicator.Reconciler;
import io.tidemark.replicator.TierSweep;
import io.tidemark.replicator.TierSweeps;
import io.tidemark.repository.DrillRecord;
import io.tidemark.scheduler.InMemoryInventory;
import io.tidemark.scheduler.RpoTracker;
import io.tidemark.testkit.FakeClock;
import io.tidemark.workers.JobProgress;
import java.time.Duration;
import java.time.Instant;
import java.util.List;
import java.util.Map;
import java.util.Optional;
import org.junit.jupiter.api.Test;

/** The status page's model and its HTML and JSON, from in-memory sources. */
class StatusPageTest {

    static final Instant T0 = Instant.parse("2026-12-07T01:00:00Z");
    static final String EVIL = "<script>alert('x')</script>&\"vm";

    private final FakeClock clock = new FakeClock(T0);
    private final RecentJobs recent = new RecentJobs();

    private static Event job(String jobId, String vm, int s) {
        return Event.of(
                jobId,
                T0.plusSeconds(s),
                new SnapshotJob(
                        vm,
                        "hv1",
                        "app",
                        new Trigger(TriggerKind.SCHEDULE, Map.of()),
                        List.of("vault"),
                        T0.plusSeconds(s)));
    }

    private static Event committed(String jobId, String vm, int s, String point) {
        return Event.of(
                jobId,
                T0.plusSeconds(s + 5),
                new RestorePointCreated(vm, point, "app", List.of("vault"), T0.plusSeconds(s), 2 << 20, 1 << 20));
    }

    private static Event replica(String jobId, String vm, int s, String point) {
        return Event.of(
                jobId, T0.plusSeconds(s + 8), new ReplicaCommitted(vm, point, "vault", T0.plusSeconds(s), 3, 1 << 20));
    }

    private static Event failed(String jobId, String vm, int s, String error) {
        return Event.of(
                jobId,
                T0.plusSeconds(s + 2),
                new JobFailed(vm, "capture", error, false, Optional.of(FailureReason.CONSISTENCY_NOT_MET)));
    }

    private RpoTracker tracker(String... vms) {
        InMemoryInventory inventory = new InMemoryInventory();
        for (String vm : vms) {
            inventory.put(vm, "hv1", Map.of());
        }
        RpoTracker rpo = new RpoTracker(
                PolicySet.of(Policy.of(
                        "app",
                        VmSelector.ofNames(vms),
                        Schedule.Interval.every(Duration.ofMinutes(5)),
                        Duration.ofMinutes(30),
                        List.of("vault"))),
                inventory,
                clock);
        rpo.refreshInventory();
        return rpo;
    }

    private static Reconciler.TargetState vault(boolean up) {
        return new Reconciler.TargetState(
                "vault",
                Optional.of(T0.plusSeconds(20)),
                up,
                up ? Optional.empty() : Optional.of("connection refused; check that it is up"),
                Optional.of(T0.plusSeconds(20)),
                up ? Map.of() : Map.of("web-1", 1),
                Optional.empty(),
                1,
                Optional.empty());
    }

    private StatusPage page(RpoTracker rpo, boolean vaultUp, List<JobProgress> running, List<DrillRecord> drills) {
        return new StatusPage(new StatusPage.Sources(
                "hv1",
                rpo::status,
                () -> Map.of("vault", vault(vaultUp)),
                () -> drills,
                () -> List.of(new EngineHealth.Component("rpo", true, "last check at " + T0)),
                () -> running,
                recent,
                clock));
    }

    @Test
    void aVmShowsItsRpoPerLocationItsNewestPointsItsFailuresAndItsDrill() {
        RpoTracker rpo = tracker("web-1");
        recent.seed(List.of(
                job("j1", "web-1", 0),
                committed("j1", "web-1", 0, "rp-1"),
                replica("j1", "web-1", 0, "rp-1"),
                job("j2", "web-1", 60),
                committed("j2", "web-1", 60, "rp-2"),
                job("j3", "web-1", 120),
                failed("j3", "web-1", 120, "VM 'web-1' requires application consistency; install qemu-guest-agent")));
        rpo.record("web-1", RpoTracker.LOCAL, T0.plusSeconds(60));
        rpo.record("web-1", "vault", T0);
        clock.advance(Duration.ofMinutes(40)); // the target's point is older than the RPO now
        DrillRecord drill = new DrillRecord(
                "web-1", "local", "rp-1", T0, T0.plusSeconds(200), 42_000, 3_600_000L, "e2fsck", true, "clean");
        JobProgress exporting = new JobProgress(
                "j4",
                "web-1",
                clock.instant().minusSeconds(30),
                "export",
                4,
                5,
                clock.instant().minusSeconds(10),
                1,
                2,
                3L << 20,
                8L << 20);

        StatusPage.View view =
                page(rpo, false, List.of(exporting), List.of(drill)).view();

        assertThat(view.vms()).singleElement().satisfies(vm -> {
            assertThat(vm.name()).isEqualTo("web-1");
            assertThat(vm.policy()).contains("app");
            assertThat(vm.failing()).isTrue();
            assertThat(vm.locations()).extracting(StatusPage.Location::location).containsExactly("local", "vault");
            StatusPage.Location local = vm.locations().get(0);
            assertThat(local.pointId()).contains("rp-2");
            assertThat(local.violated()).isTrue(); // 39 minutes > 30
            assertThat(local.drill()).contains(drill);
            StatusPage.Location vault = vm.locations().get(1);
            assertThat(vault.pointId()).contains("rp-1");
            assertThat(vault.reachable()).isFalse();
            assertThat(vm.points()).extracting(StatusPage.Point::id).containsExactly("rp-2", "rp-1");
            assertThat(vm.points().get(1).replicatedTo()).containsExactly("vault");
            assertThat(vm.failures()).singleElement().satisfies(f -> {
                assertThat(f.reason()).isEqualTo("consistency_not_met");
                assertThat(f.error()).contains("install qemu-guest-agent");
                assertThat(f.count()).isEqualTo(1);
            });
            assertThat(vm.running()).containsExactly(exporting);
        });

        String html = StatusPage.html(view);
        assertThat(html)
                .contains("data-vm=\"web-1\"")
                .contains("rp-2")
                .contains("consistency_not_met")
                .contains("install qemu-guest-agent")
                .contains("export (disk 1 of 2)")
                .contains("3.0 MiB of 8.0 MiB")
                .contains("RPO violated")
                .contains("e2fsck")
                .contains("connection refused")
                .doesNotContain("<script")
                .doesNotContain("src=")
                .doesNotContain("href=");
    }

    @Test
    void everyValueFromUsersIsEscaped() {
        RpoTracker rpo = tracker(EVIL);
        recent.seed(
                List.of(job("j1", EVIL, 0), failed("j1", EVIL, 0, "<img src=x onerror=alert(1)> in '" + EVIL + "'")));

        String html = StatusPage.html(page(rpo, true, List.of(), List.of()).view());

        assertThat(html)
                .doesNotContain("<script>")
                .doesNotContain("<img")
                .contains("&lt;script&gt;alert(&#39;x&#39;)&lt;/script&gt;&amp;&quot;vm")
                .contains("&lt;img src=x onerror=alert(1)&gt;");
    }

    @Test
    void theJsonHasTheSameContentAsThePage() throws Exception {
        RpoTracker rpo = tracker("web-1");
        recent.seed(List.of(
                job("j1", "web-1", 0),
                committed("j1", "web-1", 0, "rp-1"),
                job("j2", "web-1", 60),
                failed("j2", "web-1", 60, "no guest agent")));
        rpo.record("web-1", RpoTracker.LOCAL, T0);
        clock.advance(Duration.ofMinutes(2));

        JsonNode json = Json.mapper()
                .readTree(StatusPage.json(page(rpo, true, List.of(), List.of()).view()));

        assertThat(json.path("host").asText()).isEqualTo("hv1");
        JsonNode vm = json.path("vms").get(0);
        assertThat(vm.path("name").asText()).isEqualTo("web-1");
        assertThat(vm.path("rpoViolated").asBoolean()).isFalse();
        assertThat(vm.path("failing").asBoolean()).isTrue();
        assertThat(vm.path("locations").get(0).path("restorePoint").asText()).isEqualTo("rp-1");
        assertThat(vm.path("locations").get(0).path("ageSeconds").asLong()).isEqualTo(120);
        assertThat(vm.path("points").get(0).path("id").asText()).isEqualTo("rp-1");
        assertThat(vm.path("failures").get(0).path("reason").asText()).isEqualTo("consistency_not_met");
        assertThat(vm.path("failures").get(0).path("error").asText()).isEqualTo("no guest agent");
        assertThat(json.path("targets").get(0).path("name").asText()).isEqualTo("vault");
        assertThat(json.path("targets").get(0).path("reachable").asBoolean()).isTrue();
    }

    @Test
    void recentJobsKeepsEachEventOnceAndAtMostItsBoundPerVm() {
        Event e = job("j1", "web-1", 0);
        recent.add(e);
        recent.seed(List.of(e)); // the seed and the bus both saw it

        assertThat(recent.runs().get("web-1")).hasSize(1);
        assertThat(recent.seeded()).isTrue();

        for (int i = 0; i < RecentJobs.PER_VM + 10; i++) {
            recent.add(job("k" + i, "web-2", 10 + i));
        }
        assertThat(recent.runs().get("web-2"))
                .hasSize(RecentJobs.PER_VM)
                .first()
                .satisfies(r -> assertThat(r.jobId()).isEqualTo("k10")); // the oldest ones are forgotten
    }

    @Test
    void alikeFailuresAreOneRowWithACountAndTroubledVmsComeFirst() {
        RpoTracker rpo = tracker("a-ok", "z-failing");
        recent.seed(List.of(
                job("j1", "z-failing", 0),
                failed("j1", "z-failing", 0, "no guest agent"),
                job("j2", "z-failing", 10),
                failed("j2", "z-failing", 10, "no guest agent"),
                job("j3", "z-failing", 20),
                failed("j3", "z-failing", 20, "disk full"),
                job("j4", "a-ok", 0),
                committed("j4", "a-ok", 0, "rp-4")));

        StatusPage.View view = page(rpo, true, List.of(), List.of()).view();

        assertThat(view.vms()).extracting(StatusPage.Vm::name).containsExactly("z-failing", "a-ok");
        assertThat(view.vms().get(0).failures())
                .extracting(StatusPage.Failure::error, StatusPage.Failure::count)
                .containsExactly(
                        org.assertj.core.groups.Tuple.tuple("disk full", 1),
                        org.assertj.core.groups.Tuple.tuple("no guest agent", 2));
        assertThat(view.vms().get(0).failures().get(1).firstAt()).isEqualTo(T0.plusSeconds(2));
        assertThat(StatusPage.html(view)).contains("2 times since");
    }

    @Test
    void eachTargetsTierSweepShowsItsLastResultItsTaggedChunksAndPendingRewarmsFromMemory() throws Exception {
        TierSweep.Report report = new TierSweep.Report(
                40, Map.of("GLACIER", 3), 1, List.of("chunks/ab/c1", "chunks/cd/c2"), 4, 0, 2, "", List.of());
        TierSweeps.Status ok = new TierSweeps.Status(
                "vault",
                Optional.of(T0),
                Optional.of(T0.plusSeconds(2)),
                Optional.empty(),
                Optional.of(report),
                Optional.of(Duration.ofSeconds(2)),
                7,
                1,
                0,
                0,
                Optional.empty());
        TierSweeps.Status held = new TierSweeps.Status(
                "cold",
                Optional.of(T0),
                Optional.empty(),
                Optional.of("another tier sweep of s3://b/ holds the lock (cli on hv2, since ..."),
                Optional.empty(),
                Optional.empty(),
                0,
                0,
                0,
                1,
                Optional.of("cli on hv2 until " + T0.plusSeconds(600)));
        TierSweeps.Status failing = new TierSweeps.Status(
                "gone",
                Optional.of(T0),
                Optional.empty(),
                Optional.of("s3 target " + EVIL + " does not answer; check the endpoint"),
                Optional.empty(),
                Optional.empty(),
                0,
                0,
                0,
                3,
                Optional.empty());
        RpoTracker rpo = tracker("web-1");
        StatusPage page = new StatusPage(new StatusPage.Sources(
                "hv1",
                rpo::status,
                Map::of,
                List::of,
                List::of,
                List::of,
                recent,
                clock,
                Map::of,
                () -> List.of(held, failing, ok)));
        clock.advance(Duration.ofMinutes(1));
        StatusPage.View view = page.view();

        JsonNode json = Json.mapper().readTree(StatusPage.json(view));
        JsonNode tiers = json.path("tierSweeps");
        assertThat(tiers).hasSize(3);
        JsonNode vault = tiers.get(2);
        assertThat(vault.path("target").asText()).isEqualTo("vault");
        assertThat(vault.path("state").asText()).isEqualTo("ok");
        assertThat(vault.path("lastSuccess").asText())
                .isEqualTo(T0.plusSeconds(2).toString());
        assertThat(vault.path("taggedLast").asInt()).isEqualTo(3);
        assertThat(vault.path("taggedTotal").asLong()).isEqualTo(7);
        assertThat(vault.path("rewarmPending").asInt()).isEqualTo(2);
        assertThat(vault.path("restoresRequested").asInt()).isEqualTo(2);
        assertThat(vault.has("error")).isFalse();
        assertThat(tiers.get(0).path("state").asText()).isEqualTo("held");
        assertThat(tiers.get(0).path("heldBy").asText()).startsWith("cli on hv2 until");
        assertThat(tiers.get(1).path("state").asText()).isEqualTo("failing");
        assertThat(tiers.get(1).path("error").asText()).contains("does not answer");
        assertThat(tiers.get(1).path("failures").asLong()).isEqualTo(3);

        String html = StatusPage.html(view);
        assertThat(html)
                .contains("<section id=\"tiers\">")
                .contains("another tier sweep holds the lock: cli on hv2")
                .contains("3 last sweep, 7 since start")
                .doesNotContain("<script>alert");

        // no tiers with a storage class anywhere: no section, an empty list
        StatusPage.View none = page(rpo, true, List.of(), List.of()).view();
        assertThat(StatusPage.html(none)).doesNotContain("id=\"tiers\"");
        assertThat(Json.mapper().readTree(StatusPage.json(none)).path("tierSweeps"))
                .isEmpty();
    }
}
