package io.tidemark.targets;

import static org.assertj.core.api.Assertions.assertThat;
import static org.assertj.core.api.Assertions.assertThatThrownBy;

import io.tidemark.core.PermanentException;
import io.tidemark.core.target.ObjectTarget;
import io.tidemark.targets.file.FileObjectTarget;
import java.nio.file.Files;
import java.nio.file.Path;
import java.time.Duration;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;

/** What every spec checks when it is built, its defaults, and how a spec is opened. */
class TargetSpecTest {

    @TempDir
    Path dir;

    @Test
    void eachTypeNamesWhatItNeedsAndEveryProblemIsReportedAtOnce() {
        assertThatThrownBy(() -> FileTargetSpec.builder().build())
                .isInstanceOfSatisfying(TargetSpecException.class, e -> assertThat(e.problems())
                        .containsExactly(new TargetSpecException.Problem(
                                null, "type file needs 'path', the directory of the repository")));
        assertThatThrownBy(() -> RadosTargetSpec.builder().prefix("/abs").build())
                .isInstanceOfSatisfying(TargetSpecException.class, e -> assertThat(e.problems())
                        .extracting(TargetSpecException.Problem::toString)
                        .containsExactly(
                                "type rados needs 'monHost' or 'confFile'",
                                "type rados needs 'pool'",
                                "prefix: key prefix '/abs' must not start with '/'",
                                "type rados needs the cephx key: keyEnv or keyFile, or a confFile whose keyring holds"
                                        + " it"));
    }

    @Test
    void theDefaultsAreFilledInWhenASpecIsBuilt() {
        RadosTargetSpec rados = RadosTargetSpec.builder()
                .confFile(Path.of("/etc/ceph/ceph.conf"))
                .pool("p")
                .build();
        assertThat(rados.clientName()).isEqualTo(RadosTargetSpec.DEFAULT_CLIENT_NAME);
        assertThat(rados.prefix()).isEmpty();
        assertThat(rados.key()).isNull();
        assertThat(rados.transfer().retryDeadline()).isEqualTo(TransferLimits.DEFAULT_RETRY_DEADLINE);
        assertThat(rados.transfer().bandwidthLimit()).isZero();
        assertThat(TargetSpec.TYPES).containsOnlyKeys("s3", "rados", "file");
        assertThat(TargetSpec.DEFAULT_TYPE).isEqualTo("s3");
    }

    @Test
    void openingWrapsTheAdapterInRetriesAndTheBandwidthLimit() {
        TargetSpec spec = FileTargetSpec.builder()
                .path(dir)
                .retryDeadline(Duration.ofSeconds(30))
                .bandwidthLimit(1 << 20)
                .build();
        ObjectTarget target = spec.open("nas");
        assertThat(target).isInstanceOfSatisfying(RetryingObjectTarget.class, r -> {
            assertThat(r.backoff().deadline()).isEqualTo(Duration.ofSeconds(30));
            assertThat(r.delegate())
                    .isInstanceOfSatisfying(RateLimitedObjectTarget.class, l -> assertThat(l.bytesPerSecond())
                            .isEqualTo(1 << 20));
        });
        assertThat(spec.adapter("nas", TargetSpec.Origin.CONFIG)).isInstanceOf(FileObjectTarget.class);
    }

    @Test
    void aSecretIsReadFromItsFileAndAMissingOneSaysWhichSettingToGive() throws Exception {
        Path key = Files.writeString(dir.resolve("s3.secret"), "  s3cr3t\n");
        assertThat(SecretSource.of(null, key.toString()).read("offsite", "secret key"))
                .isEqualTo("s3cr3t");
        assertThat(SecretSource.of(null, null)).isNull();
        S3TargetSpec keyless = S3TargetSpec.builder().bucket("b").build();
        assertThatThrownBy(() -> keyless.open("offsite"))
                .isInstanceOf(PermanentException.class)
                .hasMessage("target 'offsite': no access key; set access-key via an *Env or *File setting (secrets"
                        + " never go into config or policy files)");
    }
}
