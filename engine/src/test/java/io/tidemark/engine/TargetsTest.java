package io.tidemark.engine;

import static org.assertj.core.api.Assertions.assertThat;
import static org.assertj.core.api.Assertions.assertThatThrownBy;

import io.tidemark.core.PermanentException;
import io.tidemark.core.target.ObjectTarget;
import io.tidemark.targets.FileTargetSpec;
import io.tidemark.targets.RateLimitedObjectTarget;
import io.tidemark.targets.RetryingObjectTarget;
import io.tidemark.targets.S3TargetSpec;
import io.tidemark.targets.TargetSpec;
import io.tidemark.targets.TransferLimits;
import io.tidemark.targets.file.FileObjectTarget;
import java.nio.file.Files;
import java.nio.file.Path;
import java.time.Duration;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;

/** How targets are wrapped in retries and bandwidth limits, and how those two settings are written. */
class TargetsTest {

    @TempDir
    Path dir;

    @Test
    void everyTargetRetriesAndOnlyALimitedOneIsThrottled() {
        ObjectTarget plain = fileTarget(null, null).open("nas");
        ObjectTarget limited = fileTarget("30s", "20MiB/s").open("slow");

        assertThat(plain).isInstanceOfSatisfying(RetryingObjectTarget.class, r -> {
            assertThat(r.backoff().deadline()).isEqualTo(Duration.ofMinutes(5));
            assertThat(r.delegate()).isInstanceOf(FileObjectTarget.class);
        });
        assertThat(limited).isInstanceOfSatisfying(RetryingObjectTarget.class, r -> {
            assertThat(r.backoff().deadline()).isEqualTo(Duration.ofSeconds(30));
            assertThat(r.delegate())
                    .isInstanceOfSatisfying(RateLimitedObjectTarget.class, l -> assertThat(l.bytesPerSecond())
                            .isEqualTo(20L << 20));
        });
    }

    @Test
    void retryDeadlinesAreWrittenLikePolicyDurations() {
        assertThat(Targets.retryDeadline("t", null)).isEqualTo(Duration.ofMinutes(5));
        assertThat(Targets.retryDeadline("t", "30s")).isEqualTo(Duration.ofSeconds(30));
        assertThat(Targets.retryDeadline("t", "1h30m")).isEqualTo(Duration.ofMinutes(90));
        assertThat(Targets.retryDeadline("t", "0s")).isZero();
        assertThatThrownBy(() -> Targets.retryDeadline("offsite", "5 minutes"))
                .isInstanceOf(PermanentException.class)
                .hasMessage("target 'offsite': retryDeadline '5 minutes' is not a duration such as 30s, 5m or 1h30m");
    }

    @Test
    void bandwidthLimitsTakeDecimalAndBinaryUnitsPerSecond() {
        assertThat(Targets.bandwidthLimit("t", null)).isZero();
        assertThat(Targets.bandwidthLimit("t", "20MiB/s")).isEqualTo(20L * 1024 * 1024);
        assertThat(Targets.bandwidthLimit("t", "500KB/s")).isEqualTo(500_000);
        assertThat(Targets.bandwidthLimit("t", "1.5GiB/s")).isEqualTo(3L << 29);
        assertThat(Targets.bandwidthLimit("t", "100 mb/s")).isEqualTo(100_000_000);
        assertThat(Targets.bandwidthLimit("t", "4096B/s")).isEqualTo(4096);
        for (String bad : new String[] {"20MiB", "0MiB/s", "fast", "20Mbit/s", "-1MB/s"}) {
            assertThatThrownBy(() -> Targets.bandwidthLimit("offsite", bad))
                    .isInstanceOf(PermanentException.class)
                    .hasMessageContaining("target 'offsite': bandwidthLimit '" + bad + "'")
                    .hasMessageContaining("such as 20MiB/s");
        }
    }

    @Test
    void theEngineConfigReadsBothSettings() throws Exception {
        Path file = dir.resolve("tidemark.yaml");
        Files.writeString(
                file,
                """
                targets:
                  nas:
                    type: file
                    path: /mnt/nas
                    retryDeadline: 10m
                    bandwidthLimit: 20MiB/s
                  other:
                    type: file
                    path: /mnt/other
                """);

        EngineConfig config = EngineConfig.load(file);

        assertThat(config.targets().get("nas").transfer().retryDeadline()).isEqualTo(Duration.ofMinutes(10));
        assertThat(config.targets().get("nas").transfer().bandwidthLimit()).isEqualTo(20L << 20);
        assertThat(config.targets().get("other").transfer()).isEqualTo(TransferLimits.DEFAULTS);
    }

    private FileTargetSpec fileTarget(String retryDeadline, String bandwidthLimit) {
        return new FileTargetSpec(
                dir,
                new TransferLimits(
                        retryDeadline == null ? null : Targets.retryDeadline("t", retryDeadline),
                        Targets.bandwidthLimit("t", bandwidthLimit)));
    }

    @Test
    void theSecretIsDescribedByTheSettingThatSuppliedIt() {
        assertThat(s3(null, "/etc/tm/s3.secret").secretKeyFrom("offsite", TargetSpec.Origin.CONFIG))
                .isEqualTo("from the file /etc/tm/s3.secret, set by secretKeyFile of target 'offsite'");
        assertThat(s3("S3_SECRET", null).secretKeyFrom("offsite", TargetSpec.Origin.CONFIG))
                .isEqualTo("from environment variable S3_SECRET, set by secretKeyEnv of target 'offsite'");
        assertThat(s3("TIDEMARK_S3_SECRET_KEY", null).secretKeyFrom("b", TargetSpec.Origin.COMMAND_LINE))
                .isEqualTo("from environment variable TIDEMARK_S3_SECRET_KEY");
        assertThat(s3(null, "/root/s").secretKeyFrom("b", TargetSpec.Origin.COMMAND_LINE))
                .isEqualTo("from the file /root/s named by TIDEMARK_S3_SECRET_KEY_FILE");
    }

    private static S3TargetSpec s3(String secretKeyEnv, String secretKeyFile) {
        return S3TargetSpec.builder()
                .bucket("b")
                .secretKeyEnv(secretKeyEnv)
                .secretKeyFile(secretKeyFile)
                .build();
    }
}
