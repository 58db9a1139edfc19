package io.tidemark.engine;

import static org.assertj.core.api.Assertions.assertThat;
import static org.assertj.core.api.Assertions.assertThatThrownBy;

import io.tidemark.core.PermanentException;
import java.nio.file.Files;
import java.nio.file.Path;
import java.time.Duration;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;

class EngineConfigJobsTest {

    @TempDir
    Path dir;

    @Test
    void maxConcurrentJobsDefaultsToTwoAndIsBounded() throws Exception {
        assertThat(EngineConfig.empty().concurrentJobs()).isEqualTo(2);
        Path four = Files.writeString(dir.resolve("four.yaml"), "host: hv1\nmaxConcurrentJobs: 4\n");
        assertThat(EngineConfig.load(four).concurrentJobs()).isEqualTo(4);
        assertThat(EngineConfig.load(four).toBuilder().metrics("").build().concurrentJobs())
                .isEqualTo(4);
        Path zero = Files.writeString(dir.resolve("zero.yaml"), "host: hv1\nmaxConcurrentJobs: 0\n");
        assertThatThrownBy(() -> EngineConfig.load(zero))
                .isInstanceOf(PermanentException.class)
                .hasMessageContaining("maxConcurrentJobs must be from 1 to 32");
    }

    @Test
    void jobDeadlineDefaultsToThirtyMinutesAndIsADuration() throws Exception {
        assertThat(EngineConfig.empty().jobDeadlineOrDefault()).isEqualTo(java.time.Duration.ofMinutes(30));
        Path tenMinutes = Files.writeString(dir.resolve("ten.yaml"), "host: hv1\njobDeadline: 10m\n");
        assertThat(EngineConfig.load(tenMinutes).jobDeadlineOrDefault()).isEqualTo(java.time.Duration.ofMinutes(10));
        assertThat(EngineConfig.load(tenMinutes).toBuilder().metrics("").build().jobDeadlineOrDefault())
                .isEqualTo(java.time.Duration.ofMinutes(10));
        Path bad = Files.writeString(dir.resolve("bad.yaml"), "host: hv1\njobDeadline: soon\n");
        assertThatThrownBy(() -> EngineConfig.load(bad))
                .isInstanceOf(PermanentException.class)
                .hasMessageContaining("jobDeadline 'soon' is not a duration");
        Path zero = Files.writeString(dir.resolve("zero.yaml"), "host: hv1\njobDeadline: 0s\n");
        assertThatThrownBy(() -> EngineConfig.load(zero))
                .isInstanceOf(PermanentException.class)
                .hasMessageContaining("jobDeadline must be at least 1s");
    }

    @Test
    void backupMemoryDefaultsToEightMebibytesAndIsASizeOfAtLeastOneMebibyte() throws Exception {
        assertThat(EngineConfig.empty().backupMemoryOrDefault()).isEqualTo(8L << 20);
        Path more = Files.writeString(dir.resolve("more.yaml"), "host: hv1\nbackupMemory: 64MiB\n");
        assertThat(EngineConfig.load(more).backupMemoryOrDefault()).isEqualTo(64L << 20);
        assertThat(EngineConfig.load(more).toBuilder().metrics("").build().backupMemoryOrDefault())
                .isEqualTo(64L << 20);
        Path bad = Files.writeString(dir.resolve("bad.yaml"), "host: hv1\nbackupMemory: lots\n");
        assertThatThrownBy(() -> EngineConfig.load(bad))
                .isInstanceOf(PermanentException.class)
                .hasMessageContaining("backupMemory 'lots' is not a size such as 16MiB");
        Path tiny = Files.writeString(dir.resolve("tiny.yaml"), "host: hv1\nbackupMemory: 512KiB\n");
        assertThatThrownBy(() -> EngineConfig.load(tiny))
                .isInstanceOf(PermanentException.class)
                .hasMessageContaining("backupMemory must be at least 1MiB");
    }

    @Test
    void theHostReadLimitsAreARateAndACountSharedByAllJobs() throws Exception {
        assertThat(EngineConfig.empty().worker().hostReadBytesPerSecond()).isEmpty();
        assertThat(EngineConfig.empty().worker().hostReadIopsPerSecond()).isEmpty();
        Path limited = Files.writeString(
                dir.resolve("limited.yaml"),
                "host: hv1\nworker:\n  hostReadBandwidth: 200MiB/s\n  hostReadIops: 5000\n");
        EngineConfig c = EngineConfig.load(limited);
        assertThat(c.worker().hostReadBytesPerSecond()).hasValue(200L << 20);
        assertThat(c.worker().hostReadIopsPerSecond()).hasValue(5000);
        assertThat(c.toBuilder().metrics("").build().worker()).isEqualTo(c.worker());
        Path bad = Files.writeString(dir.resolve("bad.yaml"), "host: hv1\nworker:\n  hostReadBandwidth: fast\n");
        assertThatThrownBy(() -> EngineConfig.load(bad))
                .isInstanceOf(PermanentException.class)
                .hasMessageContaining("bad.yaml:3:")
                .hasMessageContaining("worker.hostReadBandwidth must be a positive rate such as 20MiB/s");
        Path zero = Files.writeString(dir.resolve("zero.yaml"), "host: hv1\nworker: {hostReadIops: 0}\n");
        assertThatThrownBy(() -> EngineConfig.load(zero))
                .isInstanceOf(PermanentException.class)
                .hasMessageContaining("worker.hostReadIops must be a positive number");
        Path unknown = Files.writeString(dir.resolve("unknown.yaml"), "host: hv1\nworker: {readIops: 10}\n");
        assertThatThrownBy(() -> EngineConfig.load(unknown))
                .isInstanceOf(PermanentException.class)
                .hasMessageContaining("unknown.yaml:2:10")
                .hasMessageContaining("unknown key 'readIops'");
    }

    @Test
    void backupsRunAtNiceTenByDefaultZeroToNineteenOrTheNormalPriority() throws Exception {
        assertThat(EngineConfig.empty().worker().backupNiceOrDefault()).isEqualTo(10);
        Path set = Files.writeString(dir.resolve("nice.yaml"), "host: hv1\nworker:\n  backupNice: 19\n");
        assertThat(EngineConfig.load(set).worker().backupNiceOrDefault()).isEqualTo(19);
        Path off = Files.writeString(dir.resolve("normal.yaml"), "host: hv1\nworker: {backupNice: 0}\n");
        assertThat(EngineConfig.load(off).worker().backupNiceOrDefault()).isZero();
        Path bad = Files.writeString(dir.resolve("bad-nice.yaml"), "host: hv1\nworker:\n  backupNice: 20\n");
        assertThatThrownBy(() -> EngineConfig.load(bad))
                .isInstanceOf(PermanentException.class)
                .hasMessageContaining("bad-nice.yaml:3:")
                .hasMessageContaining("worker.backupNice must be a nice value from 0 (the normal priority) to 19");
    }

    @Test
    void theCopyBeforeWriteBoundIsTenSecondsByDefaultWholeSecondsOrOff() throws Exception {
        assertThat(EngineConfig.empty().worker().captureCbwTimeoutOrDefault()).isEqualTo(Duration.ofSeconds(10));
        Path set = Files.writeString(dir.resolve("set.yaml"), "host: hv1\nworker:\n  captureCbwTimeout: 30s\n");
        assertThat(EngineConfig.load(set).worker().captureCbwTimeoutOrDefault()).isEqualTo(Duration.ofSeconds(30));
        Path off = Files.writeString(dir.resolve("off.yaml"), "host: hv1\nworker: {captureCbwTimeout: off}\n");
        assertThat(EngineConfig.load(off).worker().captureCbwTimeoutOrDefault()).isZero();
        Path tiny = Files.writeString(dir.resolve("tiny.yaml"), "host: hv1\nworker: {captureCbwTimeout: 0.5s}\n");
        assertThatThrownBy(() -> EngineConfig.load(tiny))
                .isInstanceOf(PermanentException.class)
                .hasMessageContaining("worker.captureCbwTimeout");
    }

    @Test
    void tierSweepRunsHourlyByDefaultCanBeTurnedOffAndIsBounded() throws Exception {
        assertThat(EngineConfig.empty().tierSweep().everyOrDefault()).contains(Duration.ofHours(1));
        assertThat(EngineConfig.empty().tierSweep().firstOrDefault()).isEqualTo(Duration.ofMinutes(2));
        Path six = Files.writeString(dir.resolve("six.yaml"), "host: hv1\ntierSweep: {every: 6h, first: 30s}\n");
        assertThat(EngineConfig.load(six).tierSweep().everyOrDefault()).contains(Duration.ofHours(6));
        assertThat(EngineConfig.load(six).toBuilder()
                        .metrics("")
                        .build()
                        .tierSweep()
                        .firstOrDefault())
                .isEqualTo(Duration.ofSeconds(30));
        Path off = Files.writeString(dir.resolve("off.yaml"), "host: hv1\ntierSweep: {every: off}\n");
        assertThat(EngineConfig.load(off).tierSweep().everyOrDefault()).isEmpty();
        Path fast = Files.writeString(dir.resolve("fast.yaml"), "host: hv1\ntierSweep: {every: 1s}\n");
        assertThatThrownBy(() -> EngineConfig.load(fast))
                .isInstanceOf(PermanentException.class)
                .hasMessageContaining("tierSweep.every must be at least 10s, or off");
    }
}
