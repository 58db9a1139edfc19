package io.tidemark.targets.s3;

import static org.assertj.core.api.Assertions.assertThat;
import static org.assertj.core.api.Assertions.assertThatThrownBy;

import io.tidemark.core.PermanentException;
import io.tidemark.targets.S3TargetSpec;
import io.tidemark.targets.TargetSpecException;
import java.net.URI;
import org.junit.jupiter.api.Test;

class S3TargetSpecTest {

    private static final URI OSS = URI.create("https://s3.oss-cn-hangzhou.aliyuncs.com");

    @Test
    void toStringHidesTheSecret() {
        S3Credentials credentials = S3Credentials.of("AKID", "s3cr3t-value");

        assertThat(credentials.toString()).doesNotContain("s3cr3t-value").contains("secretAccessKey=***", "AKID");
    }

    @Test
    void keyPrefixIsNormalisedToEndWithASlash() {
        assertThat(spec("backups").prefix()).isEqualTo("backups/");
        assertThat(spec("backups/").prefix()).isEqualTo("backups/");
        assertThat(spec("").prefix()).isEmpty();
        assertThat(spec(null).prefix()).isEmpty();
        assertThat(spec("a/b").location()).isEqualTo("s3://bucket/a/b/");
    }

    @Test
    void ossWithPathStyleIsRefused() {
        assertThatThrownBy(() -> S3TargetSpec.builder()
                        .endpoint(OSS)
                        .bucket("b")
                        .pathStyle(true)
                        .ossCompatible(true)
                        .build())
                .isInstanceOf(PermanentException.class)
                .hasMessageContaining("virtual-hosted");
    }

    @Test
    void missingSettingsAreNamed() {
        assertThatThrownBy(() -> S3Credentials.of("AKID", ""))
                .isInstanceOf(PermanentException.class)
                .hasMessageContaining("TIDEMARK_S3_SECRET_KEY_FILE");
        assertThatThrownBy(() -> S3TargetSpec.builder().bucket(" ").build()).hasMessageContaining("bucket");
        assertThatThrownBy(() -> spec("/abs")).hasMessageContaining("must not start with '/'");
        assertThatThrownBy(() -> S3TargetSpec.builder()
                        .endpoint(URI.create("ftp://host"))
                        .bucket("b")
                        .build())
                .hasMessageContaining("http(s)");
    }

    @Test
    void everyProblemOfASpecIsReportedWithItsKey() {
        assertThatThrownBy(() -> S3TargetSpec.builder()
                        .endpoint(URI.create("ftp://host"))
                        .prefix("/abs")
                        .objectLockDays(30)
                        .build())
                .isInstanceOfSatisfying(TargetSpecException.class, e -> assertThat(e.problems())
                        .extracting(TargetSpecException.Problem::key)
                        .containsExactlyInAnyOrder("objectLockDays", "endpoint", null, "prefix"));
    }

    @Test
    void theRegionDefaultsInOnePlace() {
        assertThat(S3TargetSpec.builder().bucket("b").build().region()).isEqualTo(S3TargetSpec.DEFAULT_REGION);
    }

    @Test
    void describeNamesLocationAndEndpointButNoCredentials() {
        S3TargetSpec oss = S3TargetSpec.builder()
                .endpoint(OSS)
                .region("oss-cn-hangzhou")
                .bucket("b")
                .prefix("p")
                .ossCompatible(true)
                .build();
        S3TargetSpec aws =
                S3TargetSpec.builder().region("eu-central-1").bucket("b").build();

        try (S3ObjectTarget onOss = S3ObjectTarget.create(oss, S3Credentials.of("AKID", "s3cr3t-value"));
                S3ObjectTarget onAws = S3ObjectTarget.create(aws, S3Credentials.of("AKID", "s3cr3t"))) {
            assertThat(onOss.describe()).isEqualTo("s3://b/p/ (s3.oss-cn-hangzhou.aliyuncs.com, OSS-compatible)");
            assertThat(onAws.describe()).isEqualTo("s3://b/ (AWS eu-central-1)");
        }
    }

    private static S3TargetSpec spec(String prefix) {
        return S3TargetSpec.builder()
                .region("eu-central-1")
                .bucket("bucket")
                .prefix(prefix)
                .build();
    }
}
