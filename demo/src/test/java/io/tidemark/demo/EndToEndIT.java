package io.tidemark.demo;

import static org.assertj.core.api.Assertions.assertThat;
import static org.awaitility.Awaitility.await;

import io.tidemark.core.bus.Topics;
import io.tidemark.core.event.Event;
import io.tidemark.core.event.SnapshotJob;
import io.tidemark.core.event.Trigger;
import io.tidemark.core.event.TriggerKind;
import io.tidemark.core.repository.DiskEntry;
import io.tidemark.core.repository.Manifest;
import io.tidemark.scheduler.RpoTracker;
import io.tidemark.workers.DemoGuest;
import java.nio.file.Path;
import java.time.Duration;
import java.time.Instant;
import java.util.BitSet;
import java.util.List;
import java.util.Map;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;

/**
 * The foundation, on real parts only: policy file → Quartz → Kafka (embedded KRaft) → live capture
 * of a running QEMU VM (TCG) with dirty-bitmap incrementals over NBD → file repository → S3Proxy →
 * restore from S3 alone, bit-identical to the disk at each snapshot moment.
 */
class EndToEndIT {

    @TempDir
    Path dir;

    @Test
    void policyToQuartzToKafkaToQemuToS3ToBitIdenticalRestore() throws Exception {
        String duplicateJob = "e2e/duplicate-job";
        DemoScenario.Outcome o = new DemoScenario(dir.resolve("demo"), System.out, 5).run((engine, guest, vm) -> {
            // a job delivered twice (at-least-once delivery) produces one restore point
            Event job = Event.of(
                    duplicateJob,
                    Instant.now(),
                    new SnapshotJob(
                            DemoScenario.VM,
                            "demo-host",
                            "demo",
                            Trigger.manual(),
                            List.of(DemoScenario.TARGET),
                            Instant.now()));
            engine.bus().publish(Topics.jobs("demo-host"), DemoScenario.VM, job);
            engine.bus().publish(Topics.jobs("demo-host"), DemoScenario.VM, job);
            // a later job on the same ordered topic: once it is done, both deliveries were handled
            Event marker = Event.of(
                    "e2e/marker",
                    Instant.now(),
                    new SnapshotJob(
                            DemoScenario.VM,
                            "demo-host",
                            "demo",
                            Trigger.manual(),
                            List.of(DemoScenario.TARGET),
                            Instant.now()));
            engine.bus().publish(Topics.jobs("demo-host"), DemoScenario.VM, marker);
            await().atMost(Duration.ofSeconds(120)).until(() -> engine.repository()
                    .findByJob(DemoScenario.VM, "e2e/marker")
                    .isPresent());
            assertThat(engine.repository().manifests(DemoScenario.VM))
                    .filteredOn(m -> m.jobId().equals(duplicateJob))
                    .hasSize(1);
            // the RPO of the VM is measured locally and at the target, and exported as a metric
            await().atMost(Duration.ofSeconds(60))
                    .until(() -> engine.rpo().status().stream()
                                    .filter(st -> st.newestCapturedAt().isPresent())
                                    .count()
                            == 2);
            assertThat(engine.rpo().status())
                    .extracting(RpoTracker.Status::location)
                    .containsExactly("local", DemoScenario.TARGET);
            assertThat(engine.rpo().status()).noneMatch(RpoTracker.Status::violated);
            String metrics = httpGet("http://127.0.0.1:" + engine.metricsPort().orElseThrow() + "/metrics");
            assertThat(metrics)
                    .contains("tidemark_rpo_seconds{vm=\"demo-vm\",location=\"offsite\",policy=\"demo\"}")
                    .contains("tidemark_rpo_violated{vm=\"demo-vm\",location=\"local\",policy=\"demo\"} 0")
                    .contains("tidemark_replication_lag_seconds{vm=\"demo-vm\",target=\"offsite\"}");
        });

        // the full, the duplicate job's point, the marker's, and at least two more fired by Quartz
        assertThat(o.points()).hasSize(5);
        assertThat(o.points())
                .filteredOn(p ->
                        p.manifest().incremental() && p.manifest().trigger().is(TriggerKind.SCHEDULE))
                .hasSizeGreaterThanOrEqualTo(2);
        DemoScenario.Point first = o.points().get(0);
        assertThat(first.manifest().incremental()).isFalse();
        assertThat(first.manifest().disks())
                .allSatisfy(d -> assertThat(d.fullReason()).isPresent());

        for (DemoScenario.Point p : o.points()) {
            // bytes restored from S3 alone equal the guest's disk at that snapshot moment
            assertThat(o.matches(p))
                    .as(
                            "restore of %s equals the disk at its snapshot moment",
                            p.manifest().id())
                    .isTrue();
        }
        List<DemoScenario.Point> incrementals =
                o.points().stream().filter(p -> p.manifest().incremental()).toList();
        assertThat(incrementals).hasSizeGreaterThanOrEqualTo(2);
        for (DemoScenario.Point p : incrementals) {
            Manifest m = p.manifest();
            Manifest parent = o.points().stream()
                    .map(DemoScenario.Point::manifest)
                    .filter(x -> x.id().equals(m.parent().orElseThrow()))
                    .findFirst()
                    .orElseThrow(); // every point is replicated, so the parent is among them
            Map<String, BitSet> dirty = o.guest().dirtyBetween(parent.capturedAt(), m.capturedAt());
            for (DiskEntry d : m.disks()) {
                long chunks = chunksTouched(dirty.getOrDefault(d.name(), new BitSet()), d.chunkSize());
                // an incremental reads no more than the dirty extents rounded up to chunk size
                assertThat(d.bytesRead())
                        .as("bytes read by %s", m.id())
                        .isPositive()
                        .isLessThanOrEqualTo(chunks * d.chunkSize());
                assertThat(d.bytesRead()).isLessThan(d.sizeBytes() / 4);
            }
        }
    }

    private static String httpGet(String url) {
        try {
            return java.net.http.HttpClient.newHttpClient()
                    .send(
                            java.net.http.HttpRequest.newBuilder(java.net.URI.create(url))
                                    .build(),
                            java.net.http.HttpResponse.BodyHandlers.ofString())
                    .body();
        } catch (java.io.IOException e) {
            throw new java.io.UncheckedIOException(e);
        } catch (InterruptedException e) {
            Thread.currentThread().interrupt();
            throw new IllegalStateException(e);
        }
    }

    private static long chunksTouched(BitSet granules, int chunkSize) {
        int perChunk = chunkSize / DemoGuest.GRANULE;
        BitSet chunks = new BitSet();
        granules.stream().forEach(g -> chunks.set(g / perChunk));
        return chunks.cardinality();
    }
}
