package io.tidemark.engine;

import static org.assertj.core.api.Assertions.assertThat;

import io.tidemark.core.bus.Topics;
import io.tidemark.core.event.Event;
import io.tidemark.core.event.EventPayload;
import io.tidemark.core.event.FailureReason;
import io.tidemark.core.event.JobFailed;
import io.tidemark.core.event.ReplicaCommitted;
import io.tidemark.core.event.RestorePointCreated;
import io.tidemark.core.event.SnapshotCaptured;
import io.tidemark.core.event.SnapshotJob;
import io.tidemark.core.event.Trigger;
import io.tidemark.core.event.TriggerKind;
import io.tidemark.core.event.VmGone;
import java.nio.charset.StandardCharsets;
import java.nio.file.Files;
import java.nio.file.Path;
import java.nio.file.StandardOpenOption;
import java.time.Duration;
import java.time.Instant;
import java.util.List;
import java.util.Map;
import java.util.Optional;
import java.util.stream.Stream;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;

class JobHistoryTest {

    static final Instant T0 = Instant.parse("2026-12-07T01:00:00Z");

    @TempDir
    Path dir;

    static Event at(String jobId, int seconds, EventPayload payload) {
        return Event.of(jobId, T0.plusSeconds(seconds), payload);
    }

    static Event job(String jobId, String vm, int seconds) {
        return at(
                jobId,
                seconds,
                new SnapshotJob(
                        vm,
                        "hv1",
                        "nightly",
                        new Trigger(TriggerKind.MANUAL, Map.of("requestId", "r-1")),
                        List.of("offsite"),
                        T0.plusSeconds(seconds)));
    }

    static Event committed(String jobId, String vm, int seconds) {
        return at(
                jobId,
                seconds,
                new RestorePointCreated(vm, "rp-" + jobId, "nightly", List.of("offsite"), T0, 4096, 1024));
    }

    @Test
    void theHistoryOfAJobSurvivesReopeningItsFilesAndReadsAsOneRun() {
        try (JobHistory h = JobHistory.open(dir, JobHistory.Limits.defaults())) {
            h.handle(Topics.jobs("hv1"), job("j1", "db-1", 0));
            h.handle(Topics.JOB_STATUS, at("j1", 2, new SnapshotCaptured("db-1", T0.plusSeconds(1))));
        }
        // the engine restarts on its data: what was written is kept, and new lines follow it
        try (JobHistory h = JobHistory.open(dir, JobHistory.Limits.defaults())) {
            h.handle(Topics.RESTORE_POINTS, committed("j1", "db-1", 7));
            h.handle(Topics.REPLICATION, at("j1", 9, new ReplicaCommitted("db-1", "rp-j1", "offsite", T0, 3, 900)));
        }

        JobHistory.Contents read = JobHistory.read(dir);
        assertThat(read.events()).hasSize(4);
        assertThat(JobRuns.of(read.events())).singleElement().satisfies(run -> {
            assertThat(run.jobId()).isEqualTo("j1");
            assertThat(run.vm()).isEqualTo("db-1");
            assertThat(run.state()).isEqualTo(JobRuns.State.COMMITTED);
            assertThat(run.trigger().orElseThrow().kind()).isEqualTo(TriggerKind.MANUAL);
            assertThat(run.restorePointId()).contains("rp-j1");
            assertThat(run.bytesRead()).isEqualTo(4096);
            assertThat(run.bytesNew()).isEqualTo(1024);
            assertThat(run.duration()).contains(Duration.ofSeconds(7));
            assertThat(run.replicas()).extracting(JobRuns.Replica::target).containsExactly("offsite");
        });
    }

    @Test
    void aFailureKeepsItsReasonAndStage() {
        try (JobHistory h = JobHistory.open(dir, JobHistory.Limits.defaults())) {
            h.handle(Topics.jobs("hv1"), job("j2", "web-1", 0));
            h.handle(
                    Topics.JOB_STATUS,
                    at(
                            "j2",
                            30,
                            JobFailed.of(
                                    "web-1",
                                    "capture",
                                    FailureReason.VM_BUSY,
                                    "an earlier job of VM 'web-1' still runs",
                                    true)));
        }

        JobRuns.Run run = JobRuns.of(JobHistory.read(dir).events()).get(0);
        assertThat(run.state()).isEqualTo(JobRuns.State.FAILED);
        assertThat(run.failure().orElseThrow().reason()).contains(FailureReason.VM_BUSY);
        assertThat(run.failure().orElseThrow().stage()).isEqualTo("capture");
        assertThat(run.duration()).contains(Duration.ofSeconds(30));
    }

    @Test
    void rotationBoundsTheFilesAndKeepsTheNewestEvents() throws Exception {
        JobHistory.Limits small = new JobHistory.Limits(2000, 2);
        try (JobHistory h = JobHistory.open(dir, small)) {
            for (int i = 0; i < 60; i++) {
                h.handle(Topics.jobs("hv1"), job("j" + i, "db-1", i));
            }
        }

        try (Stream<Path> files = Files.list(dir)) {
            List<Path> all = files.toList();
            assertThat(all).hasSizeLessThanOrEqualTo(3);
            for (Path f : all) {
                assertThat(Files.size(f)).isLessThanOrEqualTo(2000);
            }
        }
        List<JobRuns.Run> runs = JobRuns.of(JobHistory.read(dir).events());
        assertThat(runs).isNotEmpty().hasSizeLessThan(60);
        assertThat(runs.get(runs.size() - 1).jobId()).isEqualTo("j59");
        // oldest first, without gaps: what is dropped is the oldest
        int first = Integer.parseInt(runs.get(0).jobId().substring(1));
        assertThat(runs)
                .extracting(JobRuns.Run::jobId)
                .isEqualTo(java.util.stream.IntStream.range(first, 60)
                        .mapToObj(i -> "j" + i)
                        .toList());
    }

    @Test
    void aTornLastLineAndARedeliveredEventAreSkipped() throws Exception {
        Event job = job("j1", "db-1", 0);
        try (JobHistory h = JobHistory.open(dir, JobHistory.Limits.defaults())) {
            h.handle(Topics.jobs("hv1"), job);
            h.handle(Topics.jobs("hv1"), job); // at-least-once: delivered again after a crash
            h.handle(Topics.INVENTORY, at("j1", 1, new VmGone("db-1", "hv1"))); // not a job's outcome
        }
        Files.writeString(
                dir.resolve(JobHistory.CURRENT),
                "{\"v\":1,\"type\":\"restore-point-cre",
                StandardCharsets.UTF_8,
                StandardOpenOption.APPEND);

        JobHistory.Contents read = JobHistory.read(dir);
        assertThat(read.events()).containsExactly(job);
        assertThat(read.skipped()).isEqualTo(1);

        // and the writer goes on after the torn line
        try (JobHistory h = JobHistory.open(dir, JobHistory.Limits.defaults())) {
            h.handle(Topics.RESTORE_POINTS, committed("j1", "db-1", 5));
        }
        assertThat(JobRuns.of(JobHistory.read(dir).events()).get(0).restorePointId())
                .contains("rp-j1");
    }

    @Test
    void anAbsentHistoryIsEmpty() {
        assertThat(JobHistory.read(dir.resolve("none")).events()).isEmpty();
        assertThat(Optional.of(JobHistory.directory(Path.of("/d")))).contains(Path.of("/d/state/history"));
    }

    @Test
    void aReaderWithAHorizonSkipsRotatedFilesWrittenWellBeforeIt() throws Exception {
        try (JobHistory h = JobHistory.open(dir, new JobHistory.Limits(1500, 4))) {
            for (int i = 0; i < 6; i++) {
                h.handle(Topics.jobs("hv1"), job("j" + i, "db-1", i));
            }
        }
        Path oldest = dir.resolve("jobs.1.jsonl");
        assertThat(oldest).exists();
        Instant now = Instant.parse("2026-12-07T12:00:00Z");
        Files.setLastModifiedTime(oldest, java.nio.file.attribute.FileTime.from(now.minus(Duration.ofDays(3))));

        List<Event> all = JobHistory.read(dir).events();
        List<Event> recent =
                JobHistory.read(dir, now.minus(Duration.ofHours(2))).events();
        List<Event> lastWeek =
                JobHistory.read(dir, now.minus(Duration.ofDays(7))).events();

        assertThat(all).hasSize(6);
        assertThat(recent).hasSizeLessThan(6).isEqualTo(all.subList(all.size() - recent.size(), all.size()));
        assertThat(lastWeek).isEqualTo(all);
    }
}
